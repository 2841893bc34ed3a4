"""The closed loop on a real pool, time-compressed: collect → plan from the store → scale.

supervisord runs a group of real ``rq worker`` processes on the local Redis; the load generator
steps the arrival rate at a minute boundary; the store holds earlier days' history with the same
step at the same time of day (so the forecast knows it is coming); collect-metrics' core polls
the queue every few seconds; ``capacity-plan`` runs in ``auto`` mode every ``plan_every_s`` from
the store at the wall clock, and scales through the supervisor scaler. Compression: 1-minute
windows, a 30 s startup lead, cycles every 15 s (the daily season stays 24 h: the backfill puts
the step at the same time of day on earlier days).

Used by ``capplan demo --live`` and ``tests/integration/live/test_closed_loop.py``; events are
reported as they happen through ``on_event``.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from capplan_app.live.harness import Supervisord, start_supervisord, stop_supervisord
from capplan_app.live.loadgen import LoadGenerator, RateStep
from capplan_app.live.measure import job_waits_s
from capplan_core.policy import ScalingPolicy

Event = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class LoopSpec:
    """The compressed scenario (rates in jobs/s, times in seconds)."""

    job_s: float = 0.5
    low_rate_per_s: float = 2.0
    high_rate_per_s: float = 8.0
    numprocs: int = 8
    start_workers: int = 2
    step_lead_s: float = 50.0  # the step is the first minute boundary at least this far ahead
    after_step_s: float = 40.0
    settle_s: float = 5.0  # waits are measured for jobs enqueued this long after the step on
    collect_every_s: float = 5.0
    plan_every_s: float = 15.0
    history_days: int = 3
    high_minutes: int = 15  # how long the step lasts on the earlier days
    slo_wait_p95_s: float = 2.0
    startup_s: float = 30.0
    replications: int = 100
    seed: int = 7


@dataclass
class LoopReport:
    step_at: float  # epoch seconds of the rate step
    workers: list[tuple[float, int]] = field(default_factory=list)  # (epoch s, RUNNING)
    cycles: list[list[dict[str, Any]]] = field(default_factory=list)  # each cycle's results
    waits_after_step_s: list[float] = field(default_factory=list)
    collected_rows: int = 0
    enqueued: int = 0

    def workers_at(self, t: float) -> int:
        """RUNNING processes at epoch ``t`` (the last sample at or before it)."""
        before = [w for at, w in self.workers if at <= t]
        return before[-1] if before else 0

    @property
    def wait_p95_s(self) -> float:
        return float(np.percentile(self.waits_after_step_s, 95)) if self.waits_after_step_s \
            else float("nan")


def live_policy(spec: LoopSpec, queue: str, group: str, redis_url: str) -> dict[str, Any]:
    """The policy of the compressed loop (a ``policies:`` list item)."""
    return {
        "name": f"live-{queue}", "queue": queue, "mode": "auto",
        "target": {"kind": "supervisor", "name": group},
        "source": {"kind": "rq", "redis_url": redis_url},
        "slo": {"wait_p95_seconds": spec.slo_wait_p95_s},
        "scaling": {"min_workers": spec.start_workers, "max_workers": spec.numprocs,
                    "max_step": spec.numprocs, "cooldown_seconds": 0, "safety_margin": 0.2,
                    "startup_seconds": spec.startup_s, "confidence_threshold": 0.8,
                    "scale_down_windows": 30, "auto_max_change": spec.numprocs},
        # seasonal naive: "the same as this time yesterday" is the scenario; with 3 days of
        # 1-minute history (a 1440-step season) the rolling-origin choice of `auto` prefers a
        # moving average, which cannot see a step that happens once a day
        "forecast": {"model": "seasonal_naive", "horizon_hours": 0.25, "interval_minutes": 1,
                     "seasonality": ["daily"]},
        "simulation": {"replications": spec.replications, "seed": spec.seed},
    }


def backfill_rows(spec: LoopSpec, queue: str, step_at: datetime, until: datetime
                  ) -> list[dict[str, Any]]:
    """1-minute rows for ``history_days`` before ``until``: the low rate, and the high rate for
    ``high_minutes`` from ``step_at``'s time of day on each earlier day (workers sized to it)."""
    start = (until - timedelta(days=spec.history_days)).replace(second=0, microsecond=0)
    step_tod = step_at - step_at.replace(hour=0, minute=0, second=0, microsecond=0)
    rng = np.random.default_rng(spec.seed)
    rows, t = [], start
    while t < until:
        tod = t - t.replace(hour=0, minute=0, second=0, microsecond=0)
        high = timedelta(0) <= tod - step_tod < timedelta(minutes=spec.high_minutes)
        rate = spec.high_rate_per_s if high else spec.low_rate_per_s
        rows.append({"queue_name": queue, "recorded_at": t,
                     "arrival_rate": max(0.0, rate * (1 + 0.03 * rng.standard_normal())),
                     "service_rate": 1.0 / spec.job_s, "backlog": 0.0,
                     "workers": float(6 if high else spec.start_workers),
                     "extra": {"service_time_p95": spec.job_s, "service_time_scv": 0.02,
                               "source": "backfill"}})
        t += timedelta(minutes=1)
    return rows


@contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    """capplan's settings for the loop (the flows read them), restored afterwards."""
    from capplan_app.settings import get_settings

    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()


class ClosedLoop:
    """Run the scenario once in ``workdir`` against Redis ``redis_url`` (a db of its own)."""

    def __init__(self, spec: LoopSpec, workdir: Path, redis_url: str,
                 on_event: Event | None = None, *, tid: str | None = None) -> None:
        self.spec, self.workdir, self.redis_url = spec, workdir, redis_url
        self.on_event = on_event or (lambda kind, data: None)
        self.tid = tid or f"live{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()

    def run(self) -> LoopReport:
        sup = start_supervisord(self.workdir, self.tid, self.redis_url,
                                numprocs=self.spec.numprocs)
        try:
            with _env({"CAPPLAN_SCALER": "supervisor", "CAPPLAN_SUPERVISOR_URL": sup.url,
                       "CAPPLAN_SUPERVISOR_USERNAME": sup.username,
                       "CAPPLAN_SUPERVISOR_PASSWORD": sup.password,
                       "CAPPLAN_REDIS_URL": self.redis_url}):
                return self._run(sup)
        finally:
            self._stop.set()
            stop_supervisord(sup)

    def _run(self, sup: Supervisord) -> LoopReport:
        from redis import Redis
        from rq import Queue

        from capplan_app.bootstrap import plan_store, scaler

        spec = self.spec
        policy_doc = live_policy(spec, sup.queue, sup.group, self.redis_url)
        policy = ScalingPolicy.model_validate(policy_doc)
        policy_path = self.workdir / "live-policy.yaml"
        policy_path.write_text(yaml.safe_dump({"policies": [policy_doc]}))
        sc = scaler(dry_run_replicas=0)
        sc.set_replicas(policy.target, spec.start_workers)
        sc.wait_ready(policy.target, spec.start_workers, timeout_s=20)
        now = datetime.now(UTC)
        step_dt = (now + timedelta(seconds=spec.step_lead_s + 59.999)).replace(
            second=0, microsecond=0)
        store = plan_store()
        written = store.record_metrics(backfill_rows(spec, sup.queue, step_dt, now))
        self.on_event("start", {"queue": sup.queue, "group": sup.group, "backfilled": written,
                                "workers": spec.start_workers, "step_at": step_dt.isoformat()})
        report = LoopReport(step_at=step_dt.timestamp())
        redis = Redis.from_url(self.redis_url)
        gen = LoadGenerator(Queue(sup.queue, connection=redis),
                            [RateStep(0, spec.low_rate_per_s),
                             RateStep(step_dt.timestamp() - time.time(), spec.high_rate_per_s)],
                            job_s=spec.job_s, rng=np.random.default_rng(spec.seed),
                            result_ttl_s=900)
        watcher = threading.Thread(target=self._watch, args=(sup, policy, report),
                                   name="capplan-live-watch", daemon=True)
        gen.start()
        watcher.start()
        try:
            end = report.step_at + spec.after_step_s
            while time.time() < end:
                cycle_started = time.time()
                report.cycles.append(self._cycle(policy_path))
                time.sleep(max(0.0, min(end, cycle_started + spec.plan_every_s) - time.time()))
        finally:
            gen.stop()
            self._stop.set()
            watcher.join(10)
        report.enqueued = gen.enqueued
        first = report.step_at + spec.settle_s
        report.waits_after_step_s = job_waits_s(redis, gen.job_id_prefix, gen.enqueued,
                                                since=first, until=time.time())
        self.on_event("done", {"wait_p95_s": report.wait_p95_s,
                               "jobs_measured": len(report.waits_after_step_s)})
        return report

    def _cycle(self, policy_path: Path) -> list[dict[str, Any]]:
        from capplan_app.bootstrap import plan_store
        from capplan_core.policy import load_policies
        from flows.capacity_plan import capacity_plan

        # the loop's policy is applied like an operator's (a new version only if it changed)
        policies = load_policies(policy_path)
        plan_store().apply_policies(policies, actor="capplan-live")
        results = asyncio.run(capacity_plan(policies=[p.name for p in policies],
                                            approval="policy", approval_poll_s=1,
                                            requested_by="capplan-live"))
        for r in results:
            self.on_event("plan", {"id": r.get("id"), "status": r.get("status"),
                                   "from": r.get("current_workers"),
                                   "to": r.get("target_workers"),
                                   "steps": [(s["execute_at"], s["from_workers"],
                                              s["to_workers"], s["status"])
                                             for s in r.get("steps") or []],
                                   "reason": r.get("skipped_reason") or r.get("error")})
        return results

    def _watch(self, sup: Supervisord, policy: ScalingPolicy, report: LoopReport) -> None:
        """Sample RUNNING workers every second; collect metrics every ``collect_every_s``."""
        from capplan_app.bootstrap import metric_sources, plan_store, redis_client
        from capplan_core.metrics.cache import RedisSnapshots
        from capplan_core.metrics.collect import collect_once

        store = plan_store()
        sources, _ = metric_sources([policy])
        cache = RedisSnapshots(redis_client(), ttl_s=600)
        next_collect = 0.0
        while not self._stop.is_set():
            now = time.time()
            running = len(sup.running())
            if not report.workers or report.workers[-1][1] != running:
                self.on_event("workers", {"running": running})
            report.workers.append((now, running))
            if now >= next_collect:
                next_collect = now + self.spec.collect_every_s
                result = collect_once(
                    sources, lambda rows: setattr(report, "collected_rows",
                                                  report.collected_rows
                                                  + store.record_metrics(rows)),
                    datetime.now(UTC), previous=cache, interval_s=self.spec.collect_every_s)
                for row in result.rows:
                    self.on_event("measured", _measured(row))
                for err in result.errors:
                    self.on_event("collect-error", {"error": f"{err.queue}: {err.error}"})
            self._stop.wait(1.0)


def _measured(row: dict[str, Any]) -> dict[str, Any]:
    extra = row.get("extra") or {}
    return {"arrival_rate": row.get("arrival_rate"), "backlog": row.get("backlog"),
            "workers": row.get("workers"), "wait_p95_s": extra.get("wait_p95_s")}
