"""The soak's independent checker: it reads the store with its own SQL, supervisord over
XML-RPC, Redis, and Prefect's API, never capplan's own code paths (bench/soak.py).

Invariants (issue 21): no step applied before its ``execute_at`` or after its window, none
twice; every approved plan ends applied, expired, superseded or failed (none orphaned); no
cycle starts more than one interval late; resource use and row counts at the start and the
end; the real queues' SLO attainment from the jobs' own enqueue and start times.
"""

from __future__ import annotations

import contextlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import create_engine, text

from bench.soak_stack import QUEUES, Stack

TABLES = (
    "capacity_plan",
    "scaling_step",
    "audit_event",
    "queue_metrics",
    "simulation_result",
    "forecast_point",
)
FINAL = ("applied", "noop", "refused", "failed", "cancelled", "expired")


@dataclass
class Checker:
    stack: Stack
    started: datetime
    orphan_grace_s: float = 240.0  # a due step nothing carried out for this long: orphaned
    orphans_seen: dict[int, str] = field(default_factory=dict)
    waits: dict[str, dict[str, tuple[float, float | None]]] = field(
        default_factory=lambda: defaultdict(dict)
    )  # queue -> job -> (enqueued, started)
    samples: list[dict[str, Any]] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    rss_every_s: float = 60.0
    rss_series: list[tuple[float, dict[str, float]]] = field(default_factory=list)

    def _sql(self, query: str, **params: Any) -> list[Any]:
        engine = create_engine(self.stack.store_url, pool_pre_ping=True)
        try:
            with engine.connect() as c:
                return list(c.execute(text(query), params))
        finally:
            engine.dispose()

    def row_counts(self) -> dict[str, int]:
        out = {t: int(self._sql(f"SELECT count(*) FROM {t}")[0][0]) for t in TABLES}
        out["prefect_flow_runs"] = self._prefect_run_count()
        return out

    # -- every few seconds ---------------------------------------------------------------
    def sample(self, load: Any) -> None:
        """One look at everything; a service down right now is counted, not fatal."""
        for name, look in (
            ("orphans", self._look_for_orphans),
            ("supervisord", self._look_at_pool),
            ("waits", lambda: self._harvest(load)),
            ("rss", self._look_at_memory),
        ):
            try:
                look()
            except Exception as err:  # noqa: BLE001 - restarts happen: counted, next sample
                self.errors[f"{name}: {type(err).__name__}"] += 1

    def _look_at_memory(self) -> None:
        """RSS once a minute: whether memory levels off needs the curve, not two ends."""
        t = (datetime.now(UTC) - self.started).total_seconds()
        if self.rss_series and t - self.rss_series[-1][0] < self.rss_every_s:
            return
        self.rss_series.append((t, self.stack.rss_mib()))

    def rss_report(self, start: dict[str, float]) -> dict[str, Any]:
        """Start, end, max, and the median of each quarter of the run, per process: memory
        that levels off has equal late quarters; a leak climbs through them."""
        out: dict[str, Any] = {"start": start, "end": self.stack.rss_mib()}
        if not self.rss_series:
            return out
        names = sorted(self.rss_series[0][1])
        values = {n: [r[n] for _, r in self.rss_series] for n in names}
        out["max"] = {n: max(v) for n, v in values.items()}
        out["quarter_medians"] = {
            n: [round(float(np.median(q)), 1) for q in np.array_split(v, 4) if len(q)]
            for n, v in values.items()
        }
        out["samples"] = len(self.rss_series)
        return out

    def _look_for_orphans(self) -> None:
        now = self._db_now()
        rows = self._sql(
            "SELECT p.id, s.id, s.execute_at, s.status FROM capacity_plan p "
            "JOIN scaling_step s ON s.plan_id = p.id WHERE p.status = 'approved' "
            "AND s.status NOT IN ('applied','noop','refused','failed','cancelled','expired') "
            "AND s.execute_at < :cutoff",
            cutoff=now - timedelta(seconds=self.orphan_grace_s),
        )
        for plan_id, step_id, at, status in rows:
            self.orphans_seen.setdefault(
                int(step_id),
                f"plan {plan_id} step {step_id} due {at.isoformat()} still "
                f"{status} {self.orphan_grace_s:.0f} s later",
            )

    def _look_at_pool(self) -> None:
        infos = self.stack.supervisor().supervisor.getAllProcessInfo()
        up = Counter(
            i["group"] for i in infos if i["statename"] in ("RUNNING", "STARTING", "BACKOFF")
        )
        self.samples.append(
            {"at": datetime.now(UTC).isoformat(), **{g: up.get(g, 0) for g in QUEUES}}
        )

    def _harvest(self, load: Any) -> None:
        """Read the enqueue and start times of jobs enqueued over 30 s ago (before a Redis
        restart loses them)."""
        from redis import Redis

        from capplan_adapters.metrics.rq_source import parse_rq_time

        assert self.stack.redis is not None
        r = Redis.from_url(self.stack.redis.url, socket_timeout=2)
        horizon = datetime.now(UTC).timestamp() - 30
        for name, jobs in load.enqueued.items():
            todo = [
                (j, t)
                for j, t in list(jobs)
                if t < horizon and self.waits[name].get(j, (0, None))[1] is None
            ]
            pipe = r.pipeline(transaction=False)
            for job_id, _ in todo:
                pipe.hget(f"rq:job:{job_id}", "started_at")
            for (job_id, enq), started in zip(todo, pipe.execute(), strict=True):
                self.waits[name][job_id] = (enq, parse_rq_time(started))

    # -- the end ---------------------------------------------------------------------------
    def dump(self) -> None:
        """Every plan and step, and the audit trail, into the workdir (for a post-mortem)."""
        import json

        out = self.stack.workdir
        for name, query in (
            (
                "plans",
                "SELECT id, queue, status, created_at, decided_by, decision_comment, "
                "current_workers, target_workers FROM capacity_plan ORDER BY id",
            ),
            (
                "steps",
                "SELECT plan_id, id, seq, status, execute_at, applied_at, "
                "from_workers, to_workers, claimed_by FROM scaling_step ORDER BY id",
            ),
            (
                "audit",
                "SELECT id, at, actor, action, plan_id, details FROM audit_event ORDER BY id",
            ),
        ):
            rows = [list(r) for r in self._sql(query)]
            (out / f"{name}.json").write_text(json.dumps(rows, default=str))

    def report(
        self,
        load: Any,
        faults: list[dict[str, Any]],
        rows_start: dict[str, int],
        rss_start: dict[str, float],
    ) -> dict[str, Any]:
        self.sample(load)
        with contextlib.suppress(Exception):
            self.dump()
        return {
            "minutes": self.stack.cfg.minutes,
            "cycle_s": self.stack.cfg.cycle_s,
            "steps": self._steps(),
            "plans": self._plans(),
            "cycles": self._cycles(),
            "slo": self._slo(),
            "faults": faults,
            "rss_mib": self.rss_report(rss_start),
            "rows": {"start": rows_start, "end": self.row_counts()},
            "jobs_lost_to_redis_restarts": load.lost,
            "check_errors": dict(self.errors),
        }

    def _steps(self) -> dict[str, Any]:
        cfg = self.stack.cfg
        late_after = timedelta(seconds=cfg.startup_s + 60)
        steps = self._sql("SELECT s.id, s.status, s.execute_at, s.applied_at FROM scaling_step s")
        scale = Counter(
            int(d["step_id"])
            for (d,) in self._sql("SELECT details FROM audit_event WHERE action = 'scale'")
        )
        applied_audits = Counter(
            int(d["step_id"])
            for (d,) in self._sql("SELECT details FROM audit_event WHERE action = 'step_applied'")
        )
        early = [
            sid
            for sid, st, at, done in steps
            if st == "applied" and scale[sid] and done is not None and done < at
        ]
        late = [
            sid
            for sid, st, at, done in steps
            if st == "applied" and scale[sid] and done is not None and done > at + late_after
        ]
        return {
            "by_status": dict(Counter(st for _, st, _, _ in steps)),
            "cluster_writes": sum(scale.values()),
            "early": len(early),
            "late": len(late),
            "duplicated": sum(1 for n in scale.values() if n > 1)
            + sum(1 for n in applied_audits.values() if n > 1),
            "early_ids": early[:10],
            "late_ids": late[:10],
        }

    def _plans(self) -> dict[str, Any]:
        now = self._db_now()
        by = dict(Counter(st for (st,) in self._sql("SELECT status FROM capacity_plan")))
        stuck = self._sql(
            "SELECT id FROM capacity_plan WHERE status = 'approved' AND expires_at < :cutoff",
            cutoff=now - timedelta(seconds=self.orphan_grace_s),
        )
        return {
            "by_status": by,
            "orphaned": len(self.orphans_seen) + len(stuck),
            "orphans": list(self.orphans_seen.values())[:10]
            + [f"plan {i} approved past its expiry" for (i,) in stuck],
        }

    def _cycles(self) -> dict[str, Any]:
        """Lateness of the scheduled cycles. A re-plan the sweeper asked for (a run for one
        policy) is counted apart; a run dropped because a cycle was still running (CANCEL_NEW: the
        next one plans from fresher data) is counted as dropped, not late; a run neither
        started nor ended an interval after its time is late."""
        runs = self._flow_runs("capacity-plan")
        # a re-plan the sweeper asked for names its one policy (a scheduled cycle plans all);
        # the flow renames its run after the policy, so the parameters tell, not the name
        replans = [r for r in runs if (r.parameters or {}).get("policies")]
        runs = [r for r in runs if r not in replans]
        lateness = [
            (r.start_time - r.expected_start_time).total_seconds()
            for r in runs
            if r.start_time and r.expected_start_time
        ]
        states = Counter(r.state.name if r.state else "?" for r in runs)
        now = datetime.now(UTC)
        dropped = [r for r in runs if r.start_time is None and r.state and r.state.is_final()]
        never = [
            r
            for r in runs
            if r.start_time is None
            and r not in dropped
            and r.expected_start_time
            and r.expected_start_time < now - timedelta(seconds=self.stack.cfg.cycle_s)
        ]
        arr = np.array(lateness) if lateness else np.array([0.0])
        return {
            "runs": len(runs),
            "states": dict(states),
            "dropped_while_one_ran": len(dropped),
            "replans_requested": len(replans),
            "replan_states": dict(Counter(r.state.name if r.state else "?" for r in replans)),
            "lateness_s": {
                "p50": round(float(np.percentile(arr, 50)), 1),
                "p99": round(float(np.percentile(arr, 99)), 1),
                "max": round(float(arr.max()), 1),
            },
            "later_than_one_interval": sum(1 for x in lateness if x > self.stack.cfg.cycle_s)
            + len(never),
        }

    def _slo(self) -> dict[str, Any]:
        cfg = self.stack.cfg
        out = {}
        for name in QUEUES:
            by_minute: dict[int, list[float]] = defaultdict(list)
            unmeasured = 0
            for enq, started in self.waits[name].values():
                if started is None:
                    unmeasured += 1
                    continue
                by_minute[int(enq // 60)].append(max(0.0, started - enq))
            windows = [w for w in by_minute.values() if len(w) >= 5]
            met = sum(1 for w in windows if np.percentile(w, 95) <= cfg.slo_wait_p95_s)
            out[name] = {
                "windows": len(windows),
                "met": met,
                "attainment": round(met / len(windows), 4) if windows else None,
                "jobs_measured": sum(len(w) for w in by_minute.values()),
                "jobs_unmeasured": unmeasured,
            }
        return out

    # -- Prefect -----------------------------------------------------------------------------
    def _flow_runs(self, deployment: str) -> list[Any]:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

        runs: list[Any] = []
        with get_client(sync_client=True) as client:
            while True:  # the API pages at 200
                page = client.read_flow_runs(
                    deployment_filter=DeploymentFilter(
                        name=DeploymentFilterName(any_=[deployment])
                    ),
                    limit=200,
                    offset=len(runs),
                )
                runs += page
                if len(page) < 200:
                    return runs

    def _prefect_run_count(self) -> int:
        from prefect.client.orchestration import get_client

        with contextlib.suppress(Exception), get_client(sync_client=True) as client:
            return int(client.count_flow_runs())
        return -1

    def _db_now(self) -> datetime:
        value = self._sql("SELECT clock_timestamp()")[0][0]
        return value.astimezone(UTC)
