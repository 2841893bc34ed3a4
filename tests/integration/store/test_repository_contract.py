"""The in-memory fake and the SQL store behave alike behind the PlanRepository port.

The same history (create, approve, supersede, apply, audit, expire) runs on the fake, on
SQLite and on the real PostgreSQL; the domain objects that come back must agree.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from capplan_adapters.store.db import open_store
from capplan_adapters.store.memory import InMemoryPlanStore
from capplan_core.planning.errors import CapRefused, DecisionConflict, StalePlan, StoreError
from capplan_core.planning.repository import PlanRepository
from capplan_core.planning.stored_plan import (
    ForecastPoint,
    PlanDraft,
    PlanStatus,
    SimulationDraft,
    StepDraft,
    StepStatus,
    StoredPlan,
)
from tests.integration.store.plan_seed import POLICY, T0

pytestmark = pytest.mark.integration


def _draft(to: int, run: str | None = None) -> PlanDraft:
    return PlanDraft(
        flow_run_id=run,
        policy_name="emails",
        queue="emails",
        mode="manual",
        current_workers=10,
        target_workers=to,
        confidence=0.9,
        slo_achievable=True,
        as_of=T0,
        steps=[
            StepDraft(T0, 10, to, "ramp", 0.9, {"window_index": 0}),
            StepDraft(T0 + timedelta(minutes=30), to, 10, "after peak"),
        ],
        simulation=SimulationDraft(0.9, 50.0, 12.5, (0.5, 0.8), 100, "fast"),
        details={"policy": "emails"},
    )


def _history(store: PlanRepository) -> dict[str, Any]:
    store.apply_policies([POLICY], actor="test")
    first = store.create_plan(_draft(14))
    store.save_forecast(
        first,
        [
            ForecastPoint("emails", T0 + timedelta(minutes=15 * i), 2.0, 1.5, 2.5, 0.8, "ewma")
            for i in range(3)
        ],
    )
    # the cap 12 clips 10->14 to 10->12, and the step after it starts from 12
    store.transition(first, PlanStatus.APPROVED, actor="alice", details={"max_workers": 12})
    step = store.get_plan(first).steps[0]
    assert store.mark_step(step.id, StepStatus.APPLIED, actor="capplan", details={"n": 1})
    assert not store.mark_step(step.id, StepStatus.APPLIED, actor="capplan", details={})
    second = store.create_plan(_draft(16))
    third = store.create_plan(_draft(18, run="run-1"))  # supersedes the second
    assert store.create_plan(_draft(18, run="run-1")) == third  # a retried store
    with pytest.raises(StalePlan):
        store.transition(second, PlanStatus.APPROVED, actor="dave")
    with pytest.raises(CapRefused):
        store.transition(third, PlanStatus.APPROVED, actor="bob", details={"max_workers": 9})
    store.transition(third, PlanStatus.APPROVED, actor="bob")  # supersedes the first
    with pytest.raises(DecisionConflict):
        store.transition(third, PlanStatus.REJECTED, actor="carol")
    with pytest.raises(StoreError):
        store.get_plan(999)
    store.set_flow_run(third, "run-1", approval_deadline=T0)

    def plan_view(p: StoredPlan) -> tuple[Any, ...]:
        return (
            p.status,
            p.decided_by,
            p.target_workers,
            p.flow_run_id,
            p.policy_name,
            [(s.seq, s.from_workers, s.to_workers, s.status) for s in p.steps],
            p.simulation,
        )

    return {
        "plans": [plan_view(p) for p in store.list_plans(queue="emails")],
        "current": store.current_plan("emails").id,  # type: ignore[union-attr]
        "by_run": store.plan_for_flow_run("run-1").id,  # type: ignore[union-attr]
        "audit": [(e.action, e.actor, e.plan_id) for e in store.audit_events()],
        "limits": store.approval_limits(first),
        "last_scale": store.last_scale_at("emails") is not None,
        "forecast": [(p.forecast_time, p.predicted_rate) for p in store.forecast_points(first)],
        "explanation": store.get_plan(first).steps[0].explanation,
        "policy": store.get_policy("emails") == POLICY,
    }


def test_fake_and_sql_store_agree(store_url: str) -> None:
    fake = _history(InMemoryPlanStore())
    sql = _history(open_store(store_url))
    assert fake == sql
    assert fake["audit"] == [
        ("policy_applied", "test", None),
        ("approved", "alice", 1),
        ("step_applied", "capplan", 1),
        ("superseded", "capplan", 2),
        ("superseded", "capplan", 1),
        ("approved", "bob", 3),
    ]
    assert [p[0] for p in fake["plans"]] == [
        PlanStatus.APPROVED,
        PlanStatus.SUPERSEDED,
        PlanStatus.SUPERSEDED,
    ]
    assert fake["plans"][2][5] == [
        (0, 10, 12, StepStatus.APPLIED),
        (1, 12, 10, StepStatus.CANCELLED),
    ]
    assert fake["explanation"]["planned"] == {"from_workers": 10, "to_workers": 14}
    assert fake["limits"] == {"max_workers": 12, "apply_hours": None}
