"""apply_step and its helpers over the in-memory plan repository (no database, no cluster)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from execution_plans import KEY, T0, emails_policy, seed_plan, store_at

from capplan_adapters.store.memory import InMemoryPlanStore
from capplan_core.execution import DryRunScaler
from capplan_core.execution.executor import (
    apply_step,
    cancel_outside_window,
    due_steps,
    planned_live_replicas,
)
from capplan_core.planning.errors import DecisionConflict
from capplan_core.planning.stored_plan import PlanStatus, StepStatus


def test_step_is_applied_once_and_audited() -> None:
    (store, _), policy = store_at(T0), emails_policy()
    pid = seed_plan(store, policy, (4, 8))
    step = store.get_plan(pid).steps[0]
    scaler = DryRunScaler({KEY: 4})
    first = apply_step(store, scaler, policy, pid, step.id, actor="capplan")
    again = apply_step(store, scaler, policy, pid, step.id, actor="capplan")
    assert (first.outcome, again.outcome) == ("applied", "already-applied")
    assert scaler.replicas[KEY] == 8 and len(scaler.actions) == 1
    assert store.get_plan(pid).status == PlanStatus.APPLIED  # its only step is done
    scale = store.audit_events(plan_id=pid, action="scale")
    assert [(e.details["from_workers"], e.details["to_workers"]) for e in scale] == [(4, 8)]


def test_a_plan_not_approved_has_its_step_cancelled() -> None:
    (store, _), policy = store_at(T0), emails_policy()
    pid = seed_plan(store, policy, (4, 8), approve=False)
    step = store.get_plan(pid).steps[0]
    out = apply_step(store, DryRunScaler({KEY: 4}), policy, pid, step.id, actor="c")
    assert out.outcome == "cancelled" and out.reason == f"plan {pid} is proposed"
    assert store.get_plan(pid).steps[0].status == StepStatus.CANCELLED


def test_newer_approved_plan_supersedes_and_its_steps_are_cancelled() -> None:
    store, policy = InMemoryPlanStore(), emails_policy()
    old = seed_plan(store, policy, (4, 8), (8, 6))
    new = seed_plan(store, policy, (4, 9))
    assert store.get_plan(old).status == PlanStatus.SUPERSEDED
    assert {s.status for s in store.get_plan(old).steps} == {StepStatus.CANCELLED}
    assert store.current_plan("emails").id == new
    with pytest.raises(DecisionConflict, match=f"plan {old} is"):
        store.transition(old, PlanStatus.APPROVED, actor="bob")


def test_cooldown_defers_the_second_step_with_retry_time() -> None:
    (store, clock), policy = store_at(T0), emails_policy(cooldown_s=300)
    pid = seed_plan(store, policy, (4, 8), (8, 10), spacing_min=1)
    s1, s2 = store.get_plan(pid).steps
    scaler = DryRunScaler({KEY: 4})
    apply_step(store, scaler, policy, pid, s1.id, actor="c")
    clock.at = T0 + timedelta(seconds=100)  # step 2 is due (at +60 s), the cooldown is not
    out = apply_step(store, scaler, policy, pid, s2.id, actor="c")
    assert out.outcome == "deferred" and out.retry_after_s == pytest.approx(200.0)
    assert store.get_plan(pid).steps[1].status == StepStatus.PENDING


def test_drift_refuses_instead_of_overwriting() -> None:
    (store, _), policy = store_at(T0), emails_policy()
    pid = seed_plan(store, policy, (4, 8))
    step = store.get_plan(pid).steps[0]
    scaler = DryRunScaler({KEY: 12})  # someone else scaled to 12
    out = apply_step(store, scaler, policy, pid, step.id, actor="c")
    assert out.outcome == "refused" and out.details["guard"] == "refuse-drift"
    assert scaler.replicas[KEY] == 12 and scaler.actions == []
    assert len(store.audit_events(plan_id=pid, action="drift")) == 1


def test_apply_hours_cancels_the_later_steps() -> None:
    store, policy = InMemoryPlanStore(), emails_policy()
    pid = seed_plan(store, policy, (4, 8), (8, 10), (10, 6))  # at 0, 30 and 60 min
    run = cancel_outside_window(store, pid, apply_hours=0.75, actor="alice")
    assert [s.seq for s in run] == [0, 1]
    assert [s.status for s in store.get_plan(pid).steps] == [
        StepStatus.PENDING,
        StepStatus.PENDING,
        StepStatus.CANCELLED,
    ]


def test_due_steps_are_pending_steps_of_approved_plans_whose_time_came() -> None:
    store, policy = InMemoryPlanStore(clock=lambda: T0), emails_policy()
    pid = seed_plan(store, policy, (4, 8), (8, 10), (10, 6))
    steps = store.get_plan(pid).steps
    now = T0 + timedelta(minutes=45)
    assert due_steps(store.list_plans(), now) == [(pid, steps[0].id), (pid, steps[1].id)]
    store.mark_step(steps[0].id, StepStatus.APPLIED, actor="c", details={})
    assert due_steps(store.list_plans(), now) == [(pid, steps[1].id)]


def test_dry_run_live_count_is_the_target_of_the_last_done_step() -> None:
    store, policy = InMemoryPlanStore(), emails_policy()
    pid = seed_plan(store, policy, (4, 8), (8, 10), (10, 6))
    s = store.get_plan(pid).steps
    assert planned_live_replicas(s, s[1].id, 4) == 4
    store.mark_step(s[0].id, StepStatus.APPLIED, actor="c", details={})
    assert planned_live_replicas(store.get_plan(pid).steps, s[1].id, 4) == 8
