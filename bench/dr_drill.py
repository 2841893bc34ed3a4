"""The restore drill: lose the database's data directory under the running loop, restore it
to the latest point from pgBackRest, restart, and measure RTO and RPO (issue 25).

    nice -n 10 .venv/bin/python bench/dr_drill.py              # docs/operations.md's run
    nice -n 10 .venv/bin/python bench/dr_drill.py --short --json   # CI's (about 3 minutes)

1. The soak's deployed loop (bench/soak_stack.py, bench/soak_load.py: Prefect server, a
   worker running prefect.yaml's deployments, supervisord with real rq workers, real load)
   on the drill's own PostgreSQL cluster (``capplandr``, port 5442), which holds capplan's
   store and Prefect's database and archives its WAL into pgBackRest
   (deployments/backup/, ``archive_timeout`` 30 s). A probe commits a timestamp every 0.5 s.
2. Once the loop has planned, a full base backup is taken; the loop keeps running.
3. The disaster: every PostgreSQL process of the cluster is SIGKILLed and its data directory
   deleted. What the store held just before is noted (bench/dr_check.py).
4. The runbook (docs/operations.md): ``capplan db restore --latest --yes`` (pgBackRest
   restores the newest backup and replays the archived WAL, then capplan settles the store),
   the Prefect server restarted, a planning cycle started.
5. Measured: **RTO** from the loss of the data to the first plan stored again; **RPO** from
   the loss to the newest probe row the restored database holds; plans lost; steps written
   twice (before the disaster and again after the restore); each plan that waited for a
   person: resumable (one is approved and must finish) or expired with its reason.

Prints one JSON object: ``rto_s``, ``rpo_s``, ``plans_lost``, ``steps_applied_twice``,
``approvals_resumable``, ``approvals_expired``, and the detail behind them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.dr_stack import DrillStack, Probe, newest_probe, wait_until  # noqa: E402
from bench.soak_stack import APPROVER, SoakConfig  # noqa: E402


def log(kind: str, data: dict[str, Any]) -> None:
    print(
        json.dumps(
            {"t": datetime.now(UTC).strftime("%H:%M:%S"), "event": kind, **data}, default=str
        ),
        file=sys.stderr,
        flush=True,
    )


def _count(url: str, query: str, **params: Any) -> int:
    from bench.dr_check import _sql

    return int(_sql(url, query, **params)[0][0])


def _start_cycle(api_url: str) -> str:
    """Start a capacity-plan run now (the runbook's last step), as an operator would."""
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        run = run_deployment(
            "capacity-plan/capacity-plan",
            timeout=0,
            flow_run_name="dr-drill: plan after the restore",
        )
    return str(getattr(run, "id", run))


def _resume_one(stack: DrillStack, key: str, plan_ids: list[int]) -> dict[str, Any]:
    """Approve the first resumable plan through the API and wait for its run to finish."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from capplan_adapters.store.db import open_store
    from capplan_cli.approvals import ApprovalError, resume_with_decision
    from capplan_core.approval.signature import signed_decision

    if not plan_ids:
        return {"resumed": None}
    store = open_store(stack.store_url)
    plan_id = plan_ids[0]
    with temporary_settings(updates={PREFECT_API_URL: stack.api_url}):
        try:
            run_id = resume_with_decision(
                store,
                plan_id,
                decision="approve",
                approver=APPROVER,
                code=signed_decision(
                    key,
                    store.get_plan(plan_id),
                    store_id=store.store_id(),
                    decision="approve",
                    approver=APPROVER,
                    now=store.now(),
                ),
                comment="dr drill: approved after the restore",
            )
        except ApprovalError as err:  # reported (the test shows why), not a crashed drill
            return {
                "resumed": None,
                "refused": plan_id,
                "reason": str(err),
                "plan_status": store.get_plan(plan_id).status,
            }

        def done() -> bool:
            with get_client(sync_client=True) as client:
                state = client.read_flow_run(UUID(run_id)).state
            return state is not None and state.is_final()

        took = wait_until(done, 240)
        with get_client(sync_client=True) as client:
            final = client.read_flow_run(UUID(run_id)).state
    return {
        "resumed": plan_id,
        "finished_s": None if took is None else round(took, 1),
        "state": final.name if final else None,
        "plan_status": store.get_plan(plan_id).status,
    }


def _prepare_loop(stack: DrillStack, cfg: SoakConfig, loop_kind: str) -> tuple[str, Any, Any]:
    """Policies, history, the load, and the loop (deployed, or in this process) started;
    a first cycle asked for at once. Returns the approver's key, the load and the loop."""
    from bench.dr_loop import InProcessLoop
    from bench.soak import prepare
    from bench.soak_load import Load

    key, start = prepare(stack)
    load = Load(stack, start)
    load.run()
    if loop_kind == "deployed":
        stack.deploy()
        stack.start_worker()
        _start_cycle(stack.api_url)
        return key, load, None
    loop = InProcessLoop(cycle_s=cfg.cycle_s, sweep_s=cfg.sweep_s, collect_s=cfg.collect_s, log=log)
    loop.start()
    return key, load, loop


def _paused(url: str, api_url: str) -> bool:
    """Whether a plan waits for a person in a paused run (with its form)."""
    from bench.dr_check import waiting_paused

    return bool(waiting_paused(url, api_url))


def run(
    cfg: SoakConfig,
    workdir: Path,
    *,
    loop_kind: str,
    backup_first: bool,
    after_backup_s: float,
    settle_s: float,
    archived_first: bool = False,
) -> dict[str, Any]:
    """The drill (module doc). ``backup_first``: the base backup as soon as the loop starts
    (else once it has planned); ``archived_first``: before the disaster, wait until the WAL of
    a plan paused for approval is archived (by ``archive_timeout``, never a forced switch), so
    a short drill also shows a waiting approval surviving the restore."""
    from bench import dr_check
    from capplan_adapters.pgbackrest import backup
    from capplan_app.prefect_restore import crash_runs_in_flight

    t_start = time.monotonic()
    stack = DrillStack(workdir, cfg)
    probe = load = loop = None
    out: dict[str, Any] = {"loop": loop_kind, "phases_s": {}}
    phases = out["phases_s"]
    try:
        stack.start()
        os.environ.update(stack.env())  # before anything imports Prefect or reads settings
        probe = Probe(stack.store_url)
        probe.start()
        key, load, loop = _prepare_loop(stack, cfg, loop_kind)
        phases["stack"] = round(time.monotonic() - t_start, 1)
        url = stack.store_url

        def take_backup() -> None:
            t = time.monotonic()
            out["backup"] = backup(stack.archived.repo, "full").as_dict()
            phases["base_backup"] = round(time.monotonic() - t, 1)
            log("backup", out["backup"])

        if backup_first:
            take_backup()
        t = time.monotonic()
        wait_until(
            lambda: _count(url, "SELECT count(*) FROM capacity_plan") >= 2, cfg.cycle_s * 3 + 180
        )
        phases["until_planned"] = round(time.monotonic() - t, 1)
        if not backup_first:
            take_backup()
        t = time.monotonic()
        # a plan paused for a person, given a few cycles: under a busy machine (the drill
        # beside the parallel test phase) the first gated pause came after the 60 s this
        # waited before, and the drill then lost no waiting approval to show
        wait_until(lambda: _paused(url, stack.api_url), max(after_backup_s, 3 * cfg.cycle_s + 60))
        if archived_first:  # the archiver (archive_timeout, no forced switch) passes here
            stack.archived.wait_archived(stack.archived.archive_timeout_s + 30, switch=False)
        time.sleep(max(0.0, after_backup_s - (time.monotonic() - t)))  # the loop runs on
        phases["loop_after_backup"] = round(time.monotonic() - t, 1)

        if loop is not None:
            loop.hold_planning()  # until the waiting approval is decided (InProcessLoop)
        before = dr_check.snapshot(url, stack.api_url)
        lost_at = stack.archived.destroy_data_dir()  # the disaster
        t_lost = time.monotonic()
        log(
            "destroyed",
            {"at": lost_at, "plans": len(before.plans), "waiting": sorted(before.waiting)},
        )

        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "capplan_cli.main",
                "db",
                "restore",
                "--latest",
                "--yes",
                "--json",
            ],
            env={**os.environ, **stack.backup_env()},
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=900,
        )
        phases["restore_command"] = round(time.monotonic() - t_lost, 1)
        if done.returncode != 0:
            raise RuntimeError(f"capplan db restore failed: {done.stderr[-3000:]}")
        out["restore"] = json.loads(done.stdout)
        t = time.monotonic()
        stack.restart_prefect()  # its lease storage starts empty
        restored_to = datetime.fromisoformat(out["restore"]["replayed_up_to"].replace(" ", "T", 1))
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: stack.api_url}):
            out["prefect_runs_crashed"] = len(crash_runs_in_flight(restored_to))
        phases["prefect_restart_and_settle"] = round(time.monotonic() - t, 1)
        # what the restore left of each waiting approval, before a new cycle can supersede
        # it; a resumable one is approved now and must finish (its due step applied once)
        first_look = dr_check.approvals(url, before, stack.api_url)
        t = time.monotonic()
        out["resume"] = _resume_one(stack, key, first_look["resumable"])
        phases["resume_approval"] = round(time.monotonic() - t, 1)
        restored_at = datetime.now(UTC)
        if loop is not None:
            loop.kick()
        else:
            out["cycle_run"] = _start_cycle(stack.api_url)
        t = time.monotonic()
        planned = wait_until(
            lambda: (
                _count(
                    url, "SELECT count(*) FROM capacity_plan WHERE created_at > :at", at=restored_at
                )
                > 0
            ),
            540,
            poll_s=0.5,
        )
        phases["until_planned_again"] = None if planned is None else round(time.monotonic() - t, 1)
        rto_s = None if planned is None else round(time.monotonic() - t_lost, 1)
        log("planned again", {"rto_s": rto_s})

        time.sleep(settle_s)  # the sweeper runs again
        audit = dr_check.restore_audit(url)
        twice = dr_check.steps_applied_twice(url, before, audit["id"] if audit else 0)
        final_look = dr_check.approvals(url, before, stack.api_url)
        lost = dr_check.plans_lost(url, before)
        newest = newest_probe(url, before=lost_at)
        out.update(
            {
                "rto_s": rto_s,
                "rpo_s": None if newest is None else round((lost_at - newest).total_seconds(), 1),
                "plans_lost": len(lost),
                "steps_applied_twice": twice["count"],
                "approvals_resumable": len(first_look["resumable"]),
                "approvals_expired": len(final_look["expired"]),
                "approvals_waiting_at_loss": len(before.waiting),
                "approvals": {"after_restore": first_look, "at_end": final_look},
                "plans_before": len(before.plans),
                "plans_lost_ids": lost,
                "steps": twice,
                "store_restored_audit": audit,
                "probe": {"written": probe.written, "failed": probe.failed},
                "loop_runs": dict(loop.runs) if loop else None,
                "loop_failures": dict(loop.failures) if loop else None,
                "drill_s": round(time.monotonic() - t_start, 1),
            }
        )
        (workdir / "report.json").write_text(json.dumps(out, indent=2, default=str))
        return out
    finally:
        if loop is not None:
            loop.stop()
        if load is not None:
            load.stop()
        if probe is not None:
            probe.stop()
        stack.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--short",
        action="store_true",
        help="CI's version: the loop in this process, about 3 minutes",
    )
    ap.add_argument(
        "--loop",
        choices=("deployed", "inprocess"),
        default=None,
        help="deployed: prefect.yaml's deployments run by a prefect worker (the "
        "default); inprocess: the same flows called from this process",
    )
    ap.add_argument("--minutes", type=float, default=20.0, help="the compressed day's length")
    ap.add_argument("--cycle-s", type=int, default=120)
    ap.add_argument(
        "--after-backup-s",
        type=float,
        default=180.0,
        help="how long the loop runs between the base backup and the disaster",
    )
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", action="store_true", help="print only the JSON report")
    a = ap.parse_args()
    if a.short:
        a.minutes, a.cycle_s, a.after_backup_s = 4.0, 45, 10.0
    loop_kind = a.loop or ("inprocess" if a.short else "deployed")
    cfg = SoakConfig(
        minutes=a.minutes,
        cycle_s=a.cycle_s,
        collect_s=10 if a.short else 20,
        sweep_s=20 if a.short else 60,
        # a person has the time of a few cycles: a plan waits through the restore
        approval_timeout_s=max(300.0, 4.0 * a.cycle_s),
        horizon_hours=max(0.25, min(1.0, 2 * a.cycle_s / 3600)),
    )
    workdir = a.workdir or Path(tempfile.mkdtemp(prefix="capplan-dr-"))
    try:
        report = run(
            cfg,
            workdir,
            loop_kind=loop_kind,
            backup_first=a.short,
            archived_first=a.short,
            after_backup_s=a.after_backup_s,
            settle_s=20.0 if a.short else 70.0,
        )
    except Exception as exc:
        # the reason goes to stdout as the report's last line: on stderr it was buried
        # under what Prefect's background threads log while the interpreter shuts down
        failed = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        print(json.dumps(failed, default=str), flush=True)
        sys.exit(1)
    print(json.dumps(report, indent=None if a.json else 2, default=str))


if __name__ == "__main__":
    main()
