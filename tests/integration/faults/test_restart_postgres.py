"""PostgreSQL restarted mid-cycle (issue 12, point 10), on the private ``capplanfaults`` cluster.

1. Plans are stored in a loop (each with its run key, retried like the ``store-plan`` task)
   while the server is restarted again and again: no half-stored plan (every plan has all its
   steps, simulation, forecast points and quality report, or does not exist), no duplicate per
   run key, no store lost, and the cycle after the last restart succeeds at once.
2. A plan is stored, the server restarted, then the plan approved: the approval succeeds on
   its first attempt (``pool_pre_ping`` replaces the dead pooled connections).
"""

from __future__ import annotations

import threading
import time

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


def _store_retrying(store: PlanStore, draft: PlanDraft, *, attempts: int = 60,
                    delay_s: float = 0.25) -> tuple[int, int]:
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
        return {m.__tablename__: int(s.scalar(select(func.count()).select_from(m)) or 0)
                for m in (CapacityPlanRow, ScalingStepRow, SimulationResultRow,
                          ForecastPointRow, DataQualityReportRow)}


def test_restarts_while_storing_plans_leave_no_half_stored_or_duplicate_plan(
        private_pg_url: str) -> None:  # noqa: F811
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
    assert counts == {"capacity_plan": n, "scaling_step": 3 * n, "simulation_result": n,
                      "forecast_point": 4 * n, "data_quality_report": n}, counts
    with store.session() as s:
        by_key = dict(s.execute(select(CapacityPlanRow.flow_run_id, CapacityPlanRow.id)).all())
    assert by_key == stored  # one plan per run key, the id each store returned
    for plan in store.list_plans(queue="emails", limit=n):
        assert len(plan.steps) == 3 and plan.simulation is not None
        assert len(store.forecast_points(plan.id)) == 4
    assert sum(1 for f in faults if f) >= 1, "no store ever saw a restart: the test did not bite"
    print(f"\nPG restarts mid-store: {RESTARTS_IN_LOOP} restarts "
          f"({min(restart_s):.1f}-{max(restart_s):.1f} s each), {n} plans stored, "
          f"{sum(1 for f in faults if f)} stores retried ({sum(faults)} failed attempts), "
          f"0 half-stored, 0 duplicates, 0 lost")


def test_restart_between_store_and_approval_then_approval_succeeds_first_time(
        private_pg_url: str) -> None:  # noqa: F811
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
    print(f"\nPG restart between store and approval: {STORE_THEN_APPROVE_REPS} reps, "
          "every approval on its first attempt")
