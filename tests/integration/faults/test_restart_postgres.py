"""PostgreSQL restarted mid-cycle (issue 12, point 10), on the private ``capplanfaults`` cluster.

1. Plans are stored in a loop (each with its run key, retried like the ``store-plan`` task)
   while the server is restarted again and again: no half-stored plan (every plan has all its
   steps, simulation, forecast points and quality report, or does not exist), no duplicate per
   run key, no store lost, and the cycle after the last restart succeeds at once.
2. A plan is stored, the server restarted, then the plan approved: the approval succeeds on
   its first attempt (``pool_pre_ping`` replaces the dead pooled connections).
3. Prefect's own database stops while an approval run waits paused: the wait outlasts the
   server's 500s, and the approval sent afterwards resumes the run (in this file because it
   stops the same private cluster: the two must not run at once).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from capplan_adapters.store.db import open_store
from capplan_adapters.store.models import (
    CapacityPlanRow,
    DataQualityReportRow,
    ForecastPointRow,
    ScalingStepRow,
    SimulationResultRow,
)
from capplan_adapters.store.repo import PlanStore
from capplan_core.planning.stored_plan import PlanDraft, PlanStatus
from tests.integration.faults.restart_services import private_pg_url, restart_pg  # noqa: F401
from tests.integration.store.plan_seed import POLICY, emails_draft

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RESTARTS_IN_LOOP = 8
STORE_THEN_APPROVE_REPS = 5


def _store_retrying(
    store: PlanStore, draft: PlanDraft, *, attempts: int = 60, delay_s: float = 0.25
) -> tuple[int, int]:
    """create_plan retried on connection faults, as the store-plan task's retries do;
    returns (plan id, failed attempts)."""
    for failed in range(attempts):
        try:
            return store.create_plan(draft), failed
        except IntegrityError:
            raise
        except DBAPIError:
            time.sleep(delay_s)
    raise AssertionError(f"no store of {draft.flow_run_id} within {attempts} attempts")


def _counts(store: PlanStore) -> dict[str, int]:
    with store.session() as s:
        return {
            m.__tablename__: int(s.scalar(select(func.count()).select_from(m)) or 0)
            for m in (
                CapacityPlanRow,
                ScalingStepRow,
                SimulationResultRow,
                ForecastPointRow,
                DataQualityReportRow,
            )
        }


def test_restarts_while_storing_plans_leave_no_half_stored_or_duplicate_plan(
    private_pg_url: str,  # noqa: F811
) -> None:
    open_store.cache_clear()
    store = open_store(private_pg_url)
    store.apply_policies([POLICY], actor="test")
    stored: dict[str, int] = {}
    faults: list[int] = []
    stop = threading.Event()

    def writer() -> None:
        k = 0
        while not stop.is_set():
            key = f"run-{k:04d}"
            plan_id, failed = _store_retrying(store, emails_draft(run=key))
            stored[key] = plan_id
            faults.append(failed)
            k += 1

    t = threading.Thread(target=writer)
    t.start()
    restart_s = []
    try:
        for _ in range(RESTARTS_IN_LOOP):
            time.sleep(0.7)
            restart_s.append(restart_pg())
    finally:
        time.sleep(1.0)
        stop.set()
        t.join(timeout=120)
    # the next cycle succeeds at once
    next_id, next_failed = _store_retrying(store, emails_draft(run="after-restarts"), attempts=1)
    stored["after-restarts"] = next_id

    n = len(stored)
    counts = _counts(store)
    assert counts == {
        "capacity_plan": n,
        "scaling_step": 3 * n,
        "simulation_result": n,
        "forecast_point": 4 * n,
        "data_quality_report": n,
    }, counts
    with store.session() as s:
        by_key = dict(s.execute(select(CapacityPlanRow.flow_run_id, CapacityPlanRow.id)).all())
    assert by_key == stored  # one plan per run key, the id each store returned
    for plan in store.list_plans(queue="emails", limit=n):
        assert len(plan.steps) == 3 and plan.simulation is not None
        assert len(store.forecast_points(plan.id)) == 4
    assert sum(1 for f in faults if f) >= 1, "no store ever saw a restart: the test did not bite"
    print(
        f"\nPG restarts mid-store: {RESTARTS_IN_LOOP} restarts "
        f"({min(restart_s):.1f}-{max(restart_s):.1f} s each), {n} plans stored, "
        f"{sum(1 for f in faults if f)} stores retried ({sum(faults)} failed attempts), "
        f"0 half-stored, 0 duplicates, 0 lost"
    )


def test_restart_between_store_and_approval_then_approval_succeeds_first_time(
    private_pg_url: str,  # noqa: F811
) -> None:
    open_store.cache_clear()
    store = open_store(private_pg_url)
    store.apply_policies([POLICY], actor="test")
    for rep in range(STORE_THEN_APPROVE_REPS):
        plan_id, _ = _store_retrying(store, emails_draft(run=f"rep-{rep}"))
        restart_pg()
        plan = store.transition(plan_id, PlanStatus.APPROVED, actor="alice")  # one attempt
        assert plan.status == PlanStatus.APPROVED and len(plan.steps) == 3
        assert len(store.audit_events(plan_id=plan_id, action="approved")) == 1
    live = [p for p in store.list_plans(queue="emails") if p.status == PlanStatus.APPROVED]
    assert len(live) == 1
    print(
        f"\nPG restart between store and approval: {STORE_THEN_APPROVE_REPS} reps, "
        "every approval on its first attempt"
    )


def test_prefect_database_down_while_paused_then_approval_resumes_and_executes_once(
    capplan_env: str, tmp_path: Path
) -> None:
    """Prefect's own PostgreSQL stops while the approve-plan run waits paused: the server
    answers 500 (Prefect's client retries only 429/502/503, and its pause loop died on the
    first one, leaving the plan proposed with nobody waiting on its form, as the restore drill
    found). The wait outlasts the outage; the approval sent afterwards resumes it and the plan
    executes once."""
    import os
    import subprocess
    import sys
    from datetime import UTC, datetime
    from uuid import UUID

    import httpx
    import yaml
    from prefect.client.orchestration import get_client

    from capplan_app.bootstrap import DEMO_POLICIES, plan_store
    from capplan_cli.approvals import wait_for_paused_plan
    from capplan_core.policy import parse_policies
    from tests.approvers import decide, save_approver_keys, with_approvers
    from tests.integration.faults.restart_services import (
        PG_ADMIN,
        PG_CLUSTER,
        PG_PORT,
        PG_VERSION,
        ensure_pg_cluster,
        wait_port,
    )
    from tests.integration.faults.test_restart_prefect import (
        _PAUSED_RUN,
        PAUSED_REPS,
        _task_runs,
    )
    from tests.integration.flows.helpers import recent_demo_metrics
    from tests.prefect_pg import prefect_on_postgres

    doc = yaml.safe_load(DEMO_POLICIES.read_text())
    emails = next(p for p in doc["policies"] if p["name"] == "emails")
    emails["approval"] = {"suspend": False, "timeout_seconds": 3600}
    policy = with_approvers(parse_policies({"policies": [emails]}))[0]
    plan_store().apply_policies([policy], actor="test")
    ensure_pg_cluster()
    outcomes = []
    with prefect_on_postgres(tmp_path / "prefect-home", admin_url=PG_ADMIN) as server:
        env = {**os.environ, "PREFECT_API_URL": server.api_url}
        save_approver_keys(["frank"])
        for rep in range(PAUSED_REPS):
            since = datetime.now(UTC)
            log_path = tmp_path / f"outage-{rep}.log"
            with log_path.open("w") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-c", _PAUSED_RUN, policy.name, recent_demo_metrics()],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
                store = plan_store()
                plan = wait_for_paused_plan(store, policy.queue, since=since, timeout_s=600)
                assert plan is not None and plan.flow_run_id
                subprocess.run(
                    ["pg_ctlcluster", PG_VERSION, PG_CLUSTER, "stop", "-m", "immediate"], check=True
                )
                wait_port(PG_PORT, up=False)
                try:  # the server is up, its database is not: what the paused run sees
                    code = httpx.get(
                        f"{server.api_url}/flow_runs/{plan.flow_run_id}", timeout=30
                    ).status_code
                finally:
                    time.sleep(8)  # several of the run's 1 s polls fail
                    subprocess.run(["pg_ctlcluster", PG_VERSION, PG_CLUSTER, "start"], check=True)
                    wait_port(PG_PORT)
                assert code >= 500
                assert proc.poll() is None, log_path.read_text()[-3000:]
                decide(store, plan.id, "approve", "frank")
                rc = proc.wait(timeout=600)
            with get_client(sync_client=True) as client:
                final = client.read_flow_run(UUID(plan.flow_run_id)).state
            outcomes.append((rc, code, final.name if final else None))
            text = log_path.read_text()
            assert rc == 0 and final is not None and final.is_completed(), (rc, final, text[-3000:])
            assert "waiting on until it answers" in text, text[-3000:]
            assert len(store.audit_events(plan_id=plan.id, action="approved")) == 1
            assert _task_runs(UUID(plan.flow_run_id))["execute"] == 1
    print(f"\nPrefect's database down while paused: {PAUSED_REPS} reps, outcomes {outcomes}")
