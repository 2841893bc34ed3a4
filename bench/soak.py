"""Soak the deployed loop over a compressed day, with faults, and check it at every moment.

    .venv/bin/python bench/soak.py --minutes 60            # docs/soak.md's run
    .venv/bin/python bench/soak.py --minutes 4 --cycle-s 60 --json   # CI's short run

The whole deployed stack runs on this machine (bench/soak_stack.py): a private PostgreSQL
cluster holding capplan's store and Prefect's database, a private Redis, ``prefect server
start`` on that PostgreSQL, supervisord running real ``rq worker`` processes for two queues,
and prefect.yaml's deployments (a cycle every ``--cycle-s``, collection every
``--collect-s``, the apply-due sweeper every minute) run by a ``prefect worker`` on a process
work pool. Demand rises and falls over the run (1-minute windows; the store holds four earlier
days with the same shape). The ``live`` queue's policy is ``auto``; the ``gated`` queue's is
``manual``, and a scripted approver approves some plans at once, some late, rejects some and
ignores some (they expire or are superseded).

Faults are injected on a schedule: an rq worker SIGKILLed, the Prefect worker SIGKILLed
mid-step, the Prefect server, PostgreSQL and Redis restarted. An independent checker
(bench/soak_check.py) reads the store, supervisord, Redis and Prefect's API throughout and
prints one JSON report: steps early / late / duplicated, plans by status and orphaned, cycle
lateness, each queue's SLO attainment, RSS and row counts at the start and the end, and each
fault with the seconds until the loop recovered.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.soak_stack import APPROVER, SoakConfig, Stack  # noqa: E402

#: (share of the run, fault): when each fault is injected (each after the one before it has
#: recovered). The long run kills the Prefect worker armed to die mid-step; the short one
#: (CI) kills it right after a cycle completed, so no cycle is left holding its slot.
FAULTS_LONG: tuple[tuple[float, str], ...] = (
    (0.10, "kill-rq-worker"),
    (0.20, "kill-worker-mid-step"),
    (0.40, "restart-prefect"),
    (0.55, "restart-postgres"),
    (0.70, "restart-redis"),
    (0.82, "kill-worker"),
    (0.90, "kill-rq-worker"),
)
FAULTS_SHORT: tuple[tuple[float, str], ...] = (
    (0.10, "kill-rq-worker"),
    (0.25, "restart-prefect"),
    (0.40, "restart-postgres"),
    (0.55, "restart-redis"),
    (0.70, "kill-worker"),
)


def log(kind: str, data: dict[str, Any]) -> None:
    print(
        json.dumps(
            {"t": datetime.now(UTC).strftime("%H:%M:%S"), "event": kind, **data}, default=str
        ),
        file=sys.stderr,
        flush=True,
    )


def prepare(stack: Stack) -> tuple[str, datetime]:
    """Policies, the approver's private key, the pools at 2 workers, the earlier days'
    history."""
    from bench.soak_load import backfill, policies
    from capplan_adapters.store.db import open_store
    from capplan_app.bootstrap import scaler
    from capplan_app.local_approver import local_approver_key
    from capplan_core.policy import parse_policies

    pols = parse_policies({"policies": policies(stack)})
    store = open_store(stack.store_url)
    store.apply_policies(pols, actor="soak-operator")
    # the scripted approver signs decisions with a key of their own (only the public key is
    # in the store: no approver secret on any server)
    key = local_approver_key(
        store, APPROVER, stack.workdir / f"{APPROVER}.key", actor="soak-operator"
    )
    sc = scaler(dry_run_replicas=0)
    for p in pols:
        sc.set_replicas(p.target, 2)
    start = datetime.now(UTC)
    log("backfilled", {"rows": backfill(stack, start)})
    return key, start


def inject(stack: Stack, kind: str) -> dict[str, Any]:
    """Inject one fault; returns what happened and how long recovery took (s)."""
    t0 = time.monotonic()
    out: dict[str, Any] = {"fault": kind, "at": datetime.now(UTC).isoformat()}
    if kind == "kill-rq-worker":
        # recovered when supervisord runs the killed process again (a new pid), not when the
        # group's count matches a sample taken after the kill (which already counts it lost)
        name, pid = stack.kill_rq_worker("live")
        out["process"], out["pid"] = name, pid
        out["recovered_s"] = _until(lambda: stack.replaced("live", name, pid), 60) if pid else None
    elif kind == "kill-worker-mid-step":
        out.update(_kill_mid_step(stack))
    elif kind == "kill-worker":  # right after a cycle completed: no cycle in flight
        out["waited_for_cycle_s"] = _until(
            lambda: _next_run_completes(t0, "capacity-plan"), stack.cfg.cycle_s * 3
        )
        stack.kill_worker()
        stack.start_worker()
        t1 = time.monotonic()
        out["recovered_s"] = _until(lambda: _next_run_completes(t1), 300)
    elif kind == "restart-prefect":
        out["restart_s"] = round(stack.restart_prefect(), 1)
        out["recovered_s"] = _until(lambda: _next_run_completes(t0), 300)
    elif kind == "restart-postgres":
        out["restart_s"] = round(stack.restart_postgres(), 1)
        out["recovered_s"] = _until(lambda: _next_run_completes(t0), 300)
    elif kind == "restart-redis":
        out["restart_s"] = round(stack.restart_redis(), 1)
        out["recovered_s"] = _until(lambda: _group_up(stack, "live") >= 1, 120)
    out["took_s"] = round(time.monotonic() - t0, 1)
    log("fault", out)
    return out


#: the deployments whose runs apply steps: the execute stage (capacity-plan, plan-queue, and
#: approve-plan after a person's approval), apply-step runs and the apply-due sweeper
STEP_DEPLOYMENTS = ("capacity-plan", "plan-queue", "approve-plan", "apply-step", "apply-due")


def _arm(kill_at: str | None) -> None:
    """Arm (or disarm) the runs that apply steps to SIGKILL themselves at ``kill_at``
    (``CAPPLAN_FAULT_KILL_AT``), through the deployments' job variables: the process worker
    passes them to each new flow-run process, so nothing is restarted to arm them (restarting
    the worker would strand the runs it was submitting, a fault of its own)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentUpdate
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    with get_client(sync_client=True) as client:
        for dep in client.read_deployments(
            deployment_filter=DeploymentFilter(
                name=DeploymentFilterName(any_=list(STEP_DEPLOYMENTS))
            )
        ):
            env = {"CAPPLAN_FAULT_KILL_AT": kill_at} if kill_at else {}
            client.update_deployment(dep.id, DeploymentUpdate(job_variables={"env": env}))


def _kill_mid_step(stack: Stack) -> dict[str, Any]:
    """Arm the runs that apply steps to SIGKILL their own process right after a step's intent
    (``applying``) is recorded; when one did, disarm, SIGKILL the Prefect worker (and every
    flow-run process it has) and start a clean one; wait until the step is final (taken over
    and read back)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(stack.store_url, pool_pre_ping=True)

    def applying() -> list[int]:
        with engine.connect() as c:
            return [
                r[0]
                for r in c.execute(text("SELECT id FROM scaling_step WHERE status = 'applying'"))
            ]

    _arm("applying")
    t0 = time.monotonic()
    hit = _until(lambda: bool(applying()), stack.cfg.cycle_s * 3 + 120)
    caught = applying()
    _arm(None)
    stack.kill_worker()
    stack.start_worker()
    out: dict[str, Any] = {"killed_mid_step": bool(caught), "steps": caught, "armed_for_s": hit}
    if caught:

        def final() -> bool:
            with engine.connect() as c:
                return all(
                    r[0] != "applying"
                    for r in c.execute(
                        text("SELECT status FROM scaling_step WHERE id = ANY(:ids)"),
                        {"ids": caught},
                    )
                )

        out["recovered_s"] = _until(final, 300)
    out["since_armed_s"] = round(time.monotonic() - t0, 1)
    engine.dispose()
    return out


def _until(cond: Callable[[], bool], timeout_s: float) -> float | None:
    """Seconds until ``cond()`` held (errors count as not yet), None if it never did."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        try:
            if cond():
                return round(time.monotonic() - t0, 1)
        except Exception:  # noqa: BLE001, S110 - a service still restarting
            pass
        time.sleep(1.0)
    return None


def _group_up(stack: Stack, group: str) -> int:
    infos = stack.supervisor().supervisor.getAllProcessInfo()
    return sum(1 for i in infos if i["group"] == group and i["statename"] == "RUNNING")


def _next_run_completes(since_monotonic: float, deployment: str | None = None) -> bool:
    """A capplan flow run (of ``deployment``, if given) that started after the fault has
    completed."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterName,
        FlowRunFilter,
        FlowRunFilterState,
    )

    since = datetime.now(UTC).timestamp() - (time.monotonic() - since_monotonic)
    only = DeploymentFilter(name=DeploymentFilterName(any_=[deployment])) if deployment else None
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type={"any_": ["COMPLETED"]})),
            limit=50,
            sort="END_TIME_DESC",
            deployment_filter=only,
        )
    return any(r.start_time and r.start_time.timestamp() > since for r in runs)


class Faults:
    """Injects the scheduled faults one after another in a thread of its own, so the
    checker keeps sampling while a fault waits for its recovery."""

    def __init__(self, stack: Stack, schedule: list[tuple[float, str]]) -> None:
        self.stack, self.schedule = stack, schedule
        self.injected: list[dict[str, Any]] = []
        self.first_cycle_s: float | None = None
        self.thread = threading.Thread(target=self._run, daemon=True, name="soak-faults")

    def _run(self) -> None:
        # Faults hit a loop that runs: the schedule starts once the first capacity-plan
        # cycle has completed (its shares are counted from then). Otherwise the short soak's
        # Prefect restart lands on the first cycle, and on a slow machine the next cycle
        # plans after the compressed day's peak: a run with no step to write.
        t0 = time.monotonic()
        self.first_cycle_s = _until(
            lambda: _next_run_completes(t0, "capacity-plan"), self.stack.cfg.cycle_s * 4
        )
        log("first-cycle", {"completed_after_s": self.first_cycle_s})
        shift = time.monotonic() - t0
        for at, kind in self.schedule:
            time.sleep(max(0.0, at + shift - time.monotonic()))
            try:
                self.injected.append(inject(self.stack, kind))
            except Exception as err:  # noqa: BLE001 - reported as a fault not recovered
                self.injected.append(
                    {"fault": kind, "error": f"{type(err).__name__}: {err}", "recovered_s": None}
                )


def run(cfg: SoakConfig, workdir: Path, faults: bool) -> dict[str, Any]:
    stack = Stack(workdir, cfg)
    try:
        stack.start()
        os.environ.update(stack.env())  # before anything imports Prefect or reads settings
        from bench.soak_check import Checker
        from bench.soak_load import Approver, Load

        key, start = prepare(stack)
        stack.deploy()
        stack.start_worker()
        load, checker = Load(stack, start), Checker(stack, start)
        approver = Approver(stack, key, log)
        rows_start, rss_start = checker.row_counts(), stack.rss_mib()
        load.run()
        approver.run()
        log(
            "started",
            {
                "minutes": cfg.minutes,
                "cycle_s": cfg.cycle_s,
                "api": stack.api_url,
                "workdir": str(workdir),
            },
        )
        end = time.monotonic() + cfg.minutes * 60
        chosen = FAULTS_LONG if cfg.minutes >= 15 else FAULTS_SHORT
        injector = Faults(
            stack,
            [
                (time.monotonic() + share * cfg.minutes * 60, kind)
                for share, kind in (chosen if faults else ())
            ],
        )
        injector.thread.start()
        # sample until the run's end and the last fault's recovery (the schedule starts
        # after the first cycle, so its tail may run past the planned end)
        while time.monotonic() < end or (
            injector.thread.is_alive() and time.monotonic() < end + 600
        ):
            checker.sample(load)
            time.sleep(5.0)
        injector.thread.join(timeout=max(0.0, end + 600 - time.monotonic()))
        injected = injector.injected
        load.stop()
        approver.stop()
        time.sleep(min(60.0, cfg.sweep_s + 10))  # the last due steps, the last sweep
        report = checker.report(load, injected, rows_start, rss_start)
        report["first_cycle_s"] = injector.first_cycle_s
        report["approver"] = dict(
            __import__("collections").Counter(m.split(" ")[0] for m in approver.decided.values())
        )
        (workdir / "report.json").write_text(json.dumps(report, indent=2, default=str))
        return report
    finally:
        stack.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--cycle-s", type=int, default=300)
    ap.add_argument("--collect-s", type=int, default=20)
    ap.add_argument("--no-faults", action="store_true")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", action="store_true", help="print only the JSON report")
    a = ap.parse_args()
    cfg = SoakConfig(
        minutes=a.minutes,
        cycle_s=a.cycle_s,
        collect_s=a.collect_s,
        # a person has most of a cycle; the next cycle's plan supersedes theirs
        approval_timeout_s=max(90.0, min(240.0, 0.8 * a.cycle_s)),
        horizon_hours=max(0.25, min(1.0, 2 * a.cycle_s / 3600)),
    )
    workdir = a.workdir or Path(tempfile.mkdtemp(prefix="capplan-soak-"))
    report = run(cfg, workdir, faults=not a.no_faults)
    print(json.dumps(report, indent=None if a.json else 2, default=str))


if __name__ == "__main__":
    main()
