"""The same store tests on SQLite and on the real PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from capplan_core.planning.errors import DecisionConflict, StoreError
from capplan_core.planning.stored_plan import (
    ForecastPoint,
    PlanDraft,
    PlanStatus,
    SimulationDraft,
    StepDraft,
    StepStatus,
)
from tests.integration.store.plan_seed import POLICY, T0

pytestmark = pytest.mark.integration


def _plan(**kw) -> PlanDraft:
    base = dict(
        policy_name="emails",
        queue="emails",
        mode="manual",
        current_workers=10,
        target_workers=14,
        confidence=0.93,
        slo_achievable=True,
        as_of=T0,
        expires_at=T0 + timedelta(hours=1),
        steps=[
            StepDraft(T0, 10, 14, "morning ramp", 0.93, {"raw_workers": 13}),
            StepDraft(T0 + timedelta(minutes=30), 14, 12, "after peak", 0.93),
        ],
        simulation=SimulationDraft(0.93, 120.0, 12.5, (0.55, 0.81), 200, "fast"),
        details={"policy": "emails"},
    )
    base.update(kw)
    return PlanDraft(**base)


def test_plan_round_trips_with_steps_and_simulation(store):
    pid = store.create_plan(_plan())
    plan = store.get_plan(pid)
    assert plan.status == PlanStatus.PROPOSED
    assert (plan.current_workers, plan.target_workers, plan.confidence) == (10, 14, 0.93)
    assert [(s.from_workers, s.to_workers, s.reason) for s in plan.steps] == [
        (10, 14, "morning ramp"),
        (14, 12, "after peak"),
    ]
    assert plan.steps[0].execute_at == T0 and plan.steps[0].execute_at.tzinfo is not None
    assert plan.steps[0].explanation == {"raw_workers": 13}
    assert plan.simulation.p95_wait_s == 12.5
    assert plan.simulation.utilization_range == (0.55, 0.81)


def test_policy_apply_is_by_name_and_round_trips(store):
    first = store.apply_policies([POLICY], actor="test")
    again = store.apply_policies([POLICY], actor="test")
    assert first[0].version == again[0].version and not again[0].changed
    assert store.get_policy("emails") == POLICY
    with pytest.raises(StoreError, match="no policy named 'nope'"):
        store.get_policy("nope")


def test_a_plan_takes_one_decision_and_it_is_audited(store):
    pid = store.create_plan(_plan())
    store.transition(pid, PlanStatus.APPROVED, actor="alice", comment="go")
    with pytest.raises(DecisionConflict, match="already approved by alice"):
        store.transition(pid, PlanStatus.REJECTED, actor="bob")
    plan = store.get_plan(pid)
    assert (plan.status, plan.decided_by, plan.decision_comment) == ("approved", "alice", "go")
    events = store.audit_events(plan_id=pid)
    assert [(e.action, e.actor) for e in events] == [("approved", "alice")]


def test_new_approved_plan_supersedes_the_old_and_cancels_its_pending_steps(store):
    old = store.create_plan(_plan())
    store.transition(old, PlanStatus.APPROVED, actor="alice")
    new = store.create_plan(_plan())
    store.transition(new, PlanStatus.APPROVED, actor="alice")
    assert store.get_plan(old).status == PlanStatus.SUPERSEDED
    assert {s.status for s in store.get_plan(old).steps} == {StepStatus.CANCELLED}
    assert store.current_plan("emails").id == new


def test_step_is_recorded_once_and_plan_becomes_applied(store):
    pid = store.create_plan(_plan())
    store.transition(pid, PlanStatus.APPROVED, actor="alice")
    s1, s2 = (s.id for s in store.get_plan(pid).steps)
    assert store.mark_step(s1, StepStatus.APPLIED, actor="capplan", details={}) is True
    assert store.mark_step(s1, StepStatus.APPLIED, actor="capplan", details={}) is False
    assert store.get_plan(pid).status == PlanStatus.APPROVED
    store.mark_step(s2, StepStatus.NOOP, actor="capplan", details={})
    assert store.get_plan(pid).status == PlanStatus.APPLIED


def test_metrics_rewrite_of_an_interval_writes_nothing_twice(store):
    rows = [
        {
            "queue_name": "emails",
            "recorded_at": T0 + timedelta(minutes=i),
            "arrival_rate": 1.0 + i,
            "service_rate": 0.5,
            "backlog": 0.0,
            "workers": 3.0,
        }
        for i in range(5)
    ]
    assert store.record_metrics(rows) == 5
    assert store.record_metrics(rows + rows[:2]) == 0
    got = store.metrics("emails")
    assert [r.arrival_rate for r in got] == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_skipped_plan_keeps_its_reason(store):
    pid = store.create_plan(
        _plan(
            skipped_reason="data quality: freshness", steps=(), simulation=None, target_workers=None
        )
    )
    plan = store.get_plan(pid)
    assert plan.status == PlanStatus.SKIPPED
    assert plan.skipped_reason == "data quality: freshness"


def test_naive_timestamps_are_refused(store):
    with pytest.raises(Exception, match="naive datetime"):
        store.create_plan(_plan(as_of=datetime(2026, 1, 1)))
    assert store.list_plans() == []


def test_forecast_points_are_stored_per_plan(store):
    pid = store.create_plan(_plan())
    n = store.save_forecast(
        pid,
        [
            ForecastPoint(
                queue_name="emails",
                forecast_time=T0 + timedelta(minutes=15 * i),
                predicted_rate=2.0,
                confidence_lower=1.5,
                confidence_upper=2.5,
                level=0.8,
                model="ewma",
            )
            for i in range(4)
        ],
    )
    assert n == 4
    pts = store.forecast_points(pid)
    assert [p.forecast_time for p in pts] == [T0 + timedelta(minutes=15 * i) for i in range(4)]
