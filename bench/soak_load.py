"""The soak's world: demand that rises and falls over the compressed day, the earlier days'
history in the store, real RQ jobs, and a scripted approver who is sometimes late, sometimes
says no and sometimes never answers (bench/soak.py)."""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from bench.soak_stack import APPROVER, QUEUES, SoakConfig, Stack


def demand(cfg: SoakConfig, start: datetime, at: datetime) -> float:
    """Jobs/s the soak asks for at ``at``: low, then one smooth rise and fall over the run
    (a compressed day), repeated at the same time of day on the earlier days."""
    day = timedelta(days=1)
    since = ((at - start) % day).total_seconds()
    span = cfg.minutes * 60.0
    if since >= span:
        return cfg.low_rate
    bump = math.sin(math.pi * since / span) ** 2
    return cfg.low_rate + (cfg.high_rate - cfg.low_rate) * bump


def backfill(stack: Stack, start: datetime) -> int:
    """1-minute rows of the earlier ``history_days`` (plus two hours) for both queues, with
    the same rise and fall at the same time of day: the forecast sees the day coming."""
    from capplan_adapters.store.db import open_store

    cfg = stack.cfg
    rng = np.random.default_rng(cfg.seed)
    first = (start - timedelta(days=cfg.history_days, hours=2)).replace(second=0, microsecond=0)
    rows: list[dict[str, Any]] = []
    t = first
    while t < start - timedelta(minutes=1):
        rate = demand(cfg, start, t)  # the same time of day as the soak
        for name in QUEUES:
            rows.append(
                {
                    "queue_name": stack.queue(name),
                    "recorded_at": t,
                    "arrival_rate": max(0.0, rate * (1 + 0.03 * rng.standard_normal())),
                    "service_rate": 1.0 / cfg.job_s,
                    "backlog": 0.0,
                    "workers": float(math.ceil(rate * cfg.job_s / 0.7)),
                    "extra": {
                        "service_time_p95": cfg.job_s,
                        "service_time_scv": 0.02,
                        "source": "soak-backfill",
                    },
                }
            )
        t += timedelta(minutes=1)
    return open_store(stack.store_url).record_metrics(rows)


def policies(stack: Stack) -> list[dict[str, Any]]:
    cfg = stack.cfg
    out = []
    for name, mode in QUEUES.items():
        out.append(
            {
                "name": f"soak-{name}",
                "queue": stack.queue(name),
                "mode": mode,
                "target": {"kind": "supervisor", "name": name},
                "source": {"kind": "rq", "redis_url": stack.redis.url if stack.redis else ""},
                "slo": {"wait_p95_seconds": cfg.slo_wait_p95_s},
                "scaling": {
                    "min_workers": 1,
                    "max_workers": cfg.numprocs,
                    "cooldown_seconds": 60,
                    "startup_seconds": cfg.startup_s,
                    "min_dwell_seconds": 180,
                    "confidence_threshold": 0.8,
                    "auto_max_change": cfg.numprocs,
                    "plan_expiry_seconds": cfg.horizon_hours * 3600,
                },
                "forecast": {
                    "model": "seasonal_naive",
                    "horizon_hours": cfg.horizon_hours,
                    "interval_minutes": 1,
                    "seasonality": ["daily"],
                },
                "simulation": {"replications": 60, "seed": cfg.seed},
                "approval": {"approvers": [APPROVER], "timeout_seconds": cfg.approval_timeout_s},
            }
        )
    return out


@dataclass
class Load:
    """Poisson arrivals of real RQ jobs at :func:`demand`'s rate, per queue; survives a
    Redis restart (an enqueue that fails is counted lost, and the load goes on)."""

    stack: Stack
    start: datetime
    enqueued: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    lost: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def run(self) -> None:
        for name in QUEUES:
            self.enqueued[name] = []
            t = threading.Thread(
                target=self._one, args=(name,), daemon=True, name=f"soak-load-{name}"
            )
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)

    def _one(self, name: str) -> None:
        from redis import Redis
        from rq import Queue

        assert self.stack.redis is not None
        rng = np.random.default_rng(self.stack.cfg.seed + len(name))
        queue_name = self.stack.queue(name)
        n = 0
        while not self._stop.is_set():
            rate = demand(self.stack.cfg, self.start, datetime.now(UTC))
            if self._stop.wait(float(rng.exponential(1.0 / rate))):
                return
            job_id = f"{queue_name}-{n}"
            n += 1
            try:
                q = Queue(
                    queue_name, connection=Redis.from_url(self.stack.redis.url, socket_timeout=2)
                )
                q.enqueue(
                    "live_jobs.work",
                    self.stack.cfg.job_s,
                    job_id=job_id,
                    result_ttl=3600,
                    failure_ttl=3600,
                )
            except Exception:  # noqa: BLE001 - Redis restarting: the job is lost, counted
                self.lost += 1
                continue
            self.enqueued[name].append((job_id, time.time()))


@dataclass
class Approver:
    """Decides each plan that waits for a person (the ``gated`` queue's, and the ``live``
    queue's when its auto policy falls back to a person), in turn: approves at once,
    approves late (half the approval timeout later), rejects, and ignores (it expires or is
    superseded). Every decision goes through the Prefect API, signed with its key, as
    ``capplan plans approve`` does."""

    stack: Stack
    key: str
    log: Callable[[str, dict[str, Any]], None]
    decided: dict[int, str] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    MOVES = ("approve", "approve-late", "reject", "ignore")

    def run(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True, name="soak-approver")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _loop(self) -> None:
        from capplan_adapters.store.db import open_store

        store = open_store(self.stack.store_url)
        seen: dict[int, float] = {}
        while not self._stop.wait(2.0):
            with contextlib.suppress(Exception):  # a restarting store or server: next round
                for plan in store.list_plans(status="proposed", limit=10):
                    if plan.id in self.decided or not plan.details.get("approval_deadline"):
                        continue
                    seen.setdefault(plan.id, time.time())
                    move = self.MOVES[plan.id % len(self.MOVES)]
                    late_s = self.stack.cfg.approval_timeout_s / 2
                    if move == "ignore":
                        self.decided[plan.id] = move
                        self.log("approver", {"plan": plan.id, "move": move})
                    elif move != "approve-late" or time.time() - seen[plan.id] >= late_s:
                        self._decide(store, plan.id, move)

    def _decide(self, store: Any, plan_id: int, move: str) -> None:
        from capplan_cli.approvals import ApprovalError, resume_with_decision
        from capplan_core.approval.signature import signed_decision

        decision = "reject" if move == "reject" else "approve"
        try:
            resume_with_decision(
                store,
                plan_id,
                decision=decision,
                approver=APPROVER,
                code=signed_decision(
                    self.key,
                    store.get_plan(plan_id),
                    store_id=store.store_id(),
                    decision=decision,
                    approver=APPROVER,
                    now=store.now(),
                ),
                comment=f"soak: {move}",
            )
        except ApprovalError as err:  # not paused yet, or no longer waiting
            if "already" in str(err):
                self.decided[plan_id] = f"{move} (too late: {err})"
            return
        self.decided[plan_id] = move
        self.log("approver", {"plan": plan_id, "move": move})
