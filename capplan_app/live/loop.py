"""The closed loop on a real pool, time-compressed: collect → plan from the store → scale.

supervisord runs a group of real ``rq worker`` processes on the local Redis; the load generator
steps the arrival rate at a minute boundary; the store holds earlier days' history with the same
step at the same time of day (so the forecast knows it is coming; :mod:`.scenario`);
collect-metrics' core polls the queue every few seconds; ``capacity-plan`` runs in ``auto``
mode every ``plan_every_s`` from the store at the wall clock; and, as the deployed
``apply-due`` sweeper does every minute, the loop applies each approved step when it is due
(every ``apply_every_s``), through the supervisor scaler. Compression: 1-minute windows, a
30 s startup lead, cycles every 15 s (the daily season stays 24 h: the backfill puts the step
at the same time of day on earlier days).

Four threads: the caller's waits for the end (or :meth:`ClosedLoop.stop`, which a signal
handler may call); the planning cycles, the sweeper and the watcher (workers sampled every
second, metrics collected) run beside it and are joined before supervisord stops. Planning
runs outside the main thread, so Prefect never installs its SIGTERM handler there: a signal
reaches the caller's handler, the current cycle finishes, and everything stops.

Used by ``capplan demo --live`` and ``tests/integration/live/test_closed_loop.py``; events are
reported as they happen through ``on_event``.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from capplan_app.live.harness import Supervisord, start_supervisord, stop_supervisord
from capplan_app.live.loadgen import LoadGenerator, RateStep
from capplan_app.live.measure import job_waits_s
from capplan_app.live.scenario import (
    LoopSpec,
    backfill_rows,
    live_policy,
    low_priority_queue,
    step_time,
)
from capplan_app.settings import settings_environment
from capplan_core.policy import ScalingPolicy

__all__ = ["ClosedLoop", "LoopReport", "LoopSpec", "backfill_rows", "live_policy"]

Event = Callable[[str, dict[str, Any]], None]
#: how long a stop waits for a planning cycle in progress to end
CYCLE_JOIN_S = 120.0


@dataclass
class LoopReport:
    step_at: float  # epoch seconds of the rate step
    workers: list[tuple[float, int]] = field(default_factory=list)  # (epoch s, RUNNING)
    cycles: list[list[dict[str, Any]]] = field(default_factory=list)  # each cycle's results
    applied: list[dict[str, Any]] = field(default_factory=list)  # the sweeper's outcomes
    waits_after_step_s: list[float] = field(default_factory=list)
    #: a shared pool's second queue: its jobs' waits over the same period
    low_priority_waits_s: list[float] = field(default_factory=list)
    collected_rows: int = 0
    enqueued: int = 0
    stopped: str | None = None  # why the loop ended early (a signal), None when it ran out

    def workers_at(self, t: float) -> int:
        """RUNNING processes at epoch ``t`` (the last sample at or before it)."""
        before = [w for at, w in self.workers if at <= t]
        return before[-1] if before else 0

    @property
    def wait_p95_s(self) -> float:
        return _p95(self.waits_after_step_s)

    @property
    def low_priority_wait_p95_s(self) -> float:
        return _p95(self.low_priority_waits_s)


def _p95(waits: list[float]) -> float:
    return float(np.percentile(waits, 95)) if waits else float("nan")


def _import_before_threads() -> None:
    """Import what the threads use here, first: two threads importing Prefect's modules for
    the first time at once deadlock on Python's per-module import locks."""
    import prefect.client.orchestration  # noqa: F401
    import prefect.flow_runs  # noqa: F401

    import capplan_core.execution.due  # noqa: F401
    import flows.capacity_plan  # noqa: F401


class ClosedLoop:
    """Run the scenario once in ``workdir`` against Redis ``redis_url`` (a db of its own)."""

    def __init__(
        self,
        spec: LoopSpec,
        workdir: Path,
        redis_url: str,
        on_event: Event | None = None,
        *,
        tid: str | None = None,
    ) -> None:
        self.spec, self.workdir, self.redis_url = spec, workdir, redis_url
        self.on_event = on_event or (lambda kind, data: None)
        self.tid = tid or f"live{uuid.uuid4().hex[:8]}"
        self.leftovers: list[str] = []  # processes stop_supervisord had to kill
        self._stop = threading.Event()
        self._why: str | None = None
        self._errors: list[BaseException] = []

    def stop(self, why: str = "stopped") -> None:
        """End the loop early (safe from a signal handler): the current planning cycle
        finishes, then the load, the workers and supervisord stop."""
        if not self._stop.is_set():
            self._why = why
            self._stop.set()

    def run(self) -> LoopReport:
        queue = f"q_{self.tid}"
        sup = start_supervisord(
            self.workdir,
            self.tid,
            self.redis_url,
            queue=queue,
            later_queues=(low_priority_queue(queue),) if self.spec.shared else (),
            numprocs=self.spec.numprocs,
        )
        try:
            with settings_environment(
                {
                    "CAPPLAN_SCALER": "supervisor",
                    "CAPPLAN_SUPERVISOR_URL": sup.url,
                    "CAPPLAN_SUPERVISOR_USERNAME": sup.username,
                    "CAPPLAN_SUPERVISOR_PASSWORD": sup.password,
                    "CAPPLAN_REDIS_URL": self.redis_url,
                }
            ):
                return self._run(sup)
        finally:
            self._stop.set()
            self.leftovers = stop_supervisord(sup)

    def _run(self, sup: Supervisord) -> LoopReport:
        from redis import Redis
        from rq import Queue

        from capplan_app.bootstrap import plan_store, scaler

        spec = self.spec
        _import_before_threads()
        policy_doc = live_policy(spec, sup.queue, sup.group, self.redis_url)
        policy = ScalingPolicy.model_validate(policy_doc)
        policy_path = self.workdir / "live-policy.yaml"
        policy_path.write_text(yaml.safe_dump({"policies": [policy_doc]}))
        sc = scaler(dry_run_replicas=0)
        sc.set_replicas(policy.target, spec.start_workers)
        sc.wait_ready(policy.target, spec.start_workers, timeout_s=20)
        now = datetime.now(UTC)
        step_dt = step_time(spec, now)
        rows = backfill_rows(spec, sup.queue, step_dt, now)
        for low in sup.queues[1:]:  # a shared pool's second queue: a steady rate every day
            steady = (spec.low_priority_rate_per_s,) * 2
            rows += backfill_rows(spec, low, step_dt, now, rates_per_s=steady)
        written = plan_store().record_metrics(rows)
        self.on_event(
            "start",
            {
                "queue": " ".join(sup.queues),
                "group": sup.group,
                "backfilled": written,
                "workers": spec.start_workers,
                "step_at": step_dt.isoformat(),
                "days": spec.history_days,
            },
        )
        report = LoopReport(step_at=step_dt.timestamp())
        redis = Redis.from_url(self.redis_url)
        gen = LoadGenerator(
            Queue(sup.queue, connection=redis),
            [
                RateStep(0, spec.low_rate_per_s),
                RateStep(step_dt.timestamp() - time.time(), spec.high_rate_per_s),
            ],
            job_s=spec.job_s,
            rng=np.random.default_rng(spec.seed),
            result_ttl_s=900,
        )
        lows = [
            LoadGenerator(
                Queue(low, connection=redis),
                [RateStep(0, spec.low_priority_rate_per_s)],
                job_s=spec.job_s,
                rng=np.random.default_rng(spec.seed + 1),
                result_ttl_s=900,
            )
            for low in sup.queues[1:]
        ]
        threads = [
            threading.Thread(target=self._guard(target), args=args, name=name, daemon=True)
            for name, target, args in (
                ("capplan-live-watch", self._watch, (sup, policy, report)),
                ("capplan-live-apply", self._sweep, (report,)),
                ("capplan-live-plan", self._cycles, (policy_path, report)),
            )
        ]
        gen.start()
        for low_gen in lows:
            low_gen.start()
        for t in threads:
            t.start()
        try:
            self._stop.wait(max(0.0, report.step_at + spec.after_step_s - time.time()))
        finally:
            self._stop.set()
            try:
                for g in (gen, *lows):  # no job arrives once the loop is over, even if a
                    g.stop()  # join is cut short
            finally:
                for t in reversed(threads):  # the planning cycle first: it may take a while
                    t.join(CYCLE_JOIN_S if t.name == "capplan-live-plan" else 30)
        report.stopped = self._why
        if self._errors:
            raise self._errors[0]
        report.enqueued = gen.enqueued
        until = time.time()
        report.waits_after_step_s, *low_waits = (
            job_waits_s(
                redis,
                g.job_id_prefix,
                g.enqueued,
                since=report.step_at + spec.settle_s,
                until=until,
            )
            for g in (gen, *lows)
        )
        report.low_priority_waits_s = low_waits[0] if low_waits else []
        done: dict[str, Any] = {
            "wait_p95_s": report.wait_p95_s,
            "jobs_measured": len(report.waits_after_step_s),
            "stopped": report.stopped,
        }
        if lows:
            done["low_priority_wait_p95_s"] = report.low_priority_wait_p95_s
            done["low_priority_jobs_measured"] = len(report.low_priority_waits_s)
        self.on_event("done", done)
        return report

    def _guard(self, target: Callable[..., None]) -> Callable[..., None]:
        """``target`` whose exception ends the loop and is raised by :meth:`run`."""

        def run(*args: Any) -> None:
            try:
                target(*args)
            except BaseException as err:  # noqa: BLE001 - re-raised by run()
                self._errors.append(err)
                self.stop(f"{type(err).__name__}: {err}")

        return run

    def _cycles(self, policy_path: Path, report: LoopReport) -> None:
        """A planning cycle every ``plan_every_s`` until the loop stops."""
        while not self._stop.is_set():
            started = time.time()
            report.cycles.append(self._cycle(policy_path))
            self._stop.wait(max(0.0, started + self.spec.plan_every_s - time.time()))

    def _cycle(self, policy_path: Path) -> list[dict[str, Any]]:
        from capplan_app.bootstrap import plan_store
        from capplan_core.policy import load_policies
        from flows.capacity_plan import capacity_plan

        # the loop's policy is applied like an operator's (a new version only if it changed)
        policies = load_policies(policy_path)
        plan_store().apply_policies(policies, actor="capplan-live")
        results = asyncio.run(
            capacity_plan(
                policies=[p.name for p in policies],
                approval="policy",
                approval_poll_s=1,
                requested_by="capplan-live",
            )
        )
        for r in results:
            self.on_event(
                "plan",
                {
                    "id": r.get("id"),
                    "status": r.get("status"),
                    "from": r.get("current_workers"),
                    "to": r.get("target_workers"),
                    "steps": [
                        (s["execute_at"], s["from_workers"], s["to_workers"], s["status"])
                        for s in r.get("steps") or []
                    ],
                    "reason": r.get("skipped_reason") or r.get("error"),
                },
            )
        return results

    def _sweep(self, report: LoopReport) -> None:
        """Apply every due step of the approved plans, every ``apply_every_s`` (what the
        deployed apply-due sweeper does every minute): a step applies at its time."""
        from capplan_app.bootstrap import authority_check, plan_store, step_scaler
        from capplan_core.execution.due import DueRun, apply_due

        run = DueRun(
            run_id=f"live-sweeper-{self.tid}",
            actor="capplan-live",
            wait_ready_s=20.0,
            authority=authority_check,
        )
        while not self._stop.wait(self.spec.apply_every_s):
            for done in apply_due(plan_store(), step_scaler, run=run):
                if done["outcome"] == "deferred":
                    continue  # e.g. its target busy with the cycle's own execute: next sweep
                report.applied.append({**done, "at": time.time()})
                self.on_event("step", done)

    def _watch(self, sup: Supervisord, policy: ScalingPolicy, report: LoopReport) -> None:
        """Sample RUNNING workers every second; collect metrics every ``collect_every_s``."""
        from capplan_adapters.metrics.cache import RedisSnapshots
        from capplan_app.bootstrap import metric_sources, plan_store, redis_client
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
                    sources,
                    lambda rows: setattr(
                        report, "collected_rows", report.collected_rows + store.record_metrics(rows)
                    ),
                    datetime.now(UTC),
                    previous=cache,
                    interval_s=self.spec.collect_every_s,
                )
                for row in result.rows:
                    self.on_event("measured", _measured(row))
                for err in result.errors:
                    self.on_event("collect-error", {"error": f"{err.queue}: {err.error}"})
            self._stop.wait(1.0)


def _measured(row: dict[str, Any]) -> dict[str, Any]:
    extra = row.get("extra") or {}
    return {
        "arrival_rate": row.get("arrival_rate"),
        "backlog": row.get("backlog"),
        "workers": row.get("workers"),
        "wait_p95_s": extra.get("wait_p95_s"),
    }
