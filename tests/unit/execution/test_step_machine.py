"""The step state machine over the in-memory repository: claims and leases, intent before the
write, take-over and read-back, transient and permanent faults, order and staleness."""

from __future__ import annotations

from datetime import timedelta

import pytest
from execution_plans import KEY, T0, Clock, emails_policy, seed_plan, store_at
from faulty_scaler import FaultyScaler

from capplan_adapters.store.memory import InMemoryPlanStore
from capplan_core.execution.due import DueRun, apply_due
from capplan_core.execution.executor import apply_step, target_lock_key
from capplan_core.execution.ordering import effective_execute_at, stale_reason
from capplan_core.execution.write import RetryPolicy
from capplan_core.planning.errors import DecisionConflict
from capplan_core.planning.stored_plan import (
    STEP_FINAL,
    STEP_TRANSITIONS,
    PlanStatus,
    StepStatus,
)
from capplan_core.policy import ScalingPolicy

NO_WAIT = RetryPolicy(attempts=3, backoff_s=0.0, sleep=lambda _s: None)


def _actions(store: InMemoryPlanStore, pid: int) -> list[str]:
    return [e.action for e in store.audit_events(plan_id=pid) if e.action.startswith("step_")]


def test_final_statuses_have_no_way_out_and_pending_cannot_jump_to_applied() -> None:
    assert all(s not in STEP_TRANSITIONS for s in STEP_FINAL)
    assert StepStatus.APPLIED not in STEP_TRANSITIONS[StepStatus.PENDING]
    (store, _clock), policy = store_at(T0), emails_policy()
    step = store.get_plan(seed_plan(store, policy, (4, 8))).steps[0]
    with pytest.raises(DecisionConflict, match="cannot move pending -> applying"):
        store.move_step(
            step.id, StepStatus.PENDING, StepStatus.APPLYING, run_id="r", actor="c", details={}
        )


def test_intent_is_recorded_before_the_write_and_the_outcome_after() -> None:
    (store, _clock), policy = store_at(T0), emails_policy()
    pid = seed_plan(store, policy, (4, 8))
    seen: list[tuple[str, list[str]]] = []
    hook = lambda point: seen.append((point, _actions(store, pid)))  # noqa: E731
    scaler = FaultyScaler({KEY: 4})
    out = apply_step(
        store, scaler, policy, pid, store.get_plan(pid).steps[0].id, run_id="r1", hook=hook
    )
    assert out.outcome == "applied" and scaler.replicas[KEY] == 8
    assert seen == [
        ("claimed", ["step_claimed"]),
        ("applying", ["step_claimed", "step_applying"]),
        ("written", ["step_claimed", "step_applying"]),
    ]
    intent = store.audit_events(plan_id=pid, action="step_applying")[0].details
    assert (
        intent["from_workers"],
        intent["to_workers"],
        intent["live_before"],
        intent["version_before"],
    ) == (4, 8, 4, "0")
    assert _actions(store, pid)[-1] == "step_applied"
    assert store.get_plan(pid).status == PlanStatus.APPLIED


def test_a_claimed_step_is_not_taken_while_its_lease_runs_then_is_taken_over() -> None:
    (store, clock), policy = store_at(T0), emails_policy()
    pid = seed_plan(store, policy, (4, 8))
    step = store.get_plan(pid).steps[0]
    assert store.claim_step(step.id, run_id="a", lease_s=60, actor="c") is not None
    clock.at = T0 + timedelta(seconds=59)
    assert store.claim_step(step.id, run_id="b", lease_s=60, actor="c") is None
    clock.at = T0 + timedelta(seconds=61)
    later = store.claim_step(step.id, run_id="b", lease_s=60, actor="c")
    assert later is not None and later.taken_over_from == "a"
    assert later.step.claimed_by == "b"
    assert _actions(store, pid) == ["step_claimed", "step_taken_over"]


def _killed_at(
    point: str,
) -> tuple[InMemoryPlanStore, Clock, ScalingPolicy, int, int, FaultyScaler]:
    """A 4 -> 8 step whose first run (``dead``, lease 30 s) was killed at hook ``point``;
    returns the store, its clock, policy, plan id, step id and scaler it left behind."""
    (store, clock), policy = store_at(T0), emails_policy()
    pid = seed_plan(store, policy, (4, 8))
    sid = store.get_plan(pid).steps[0].id
    scaler = FaultyScaler({KEY: 4})

    def die(at: str) -> None:
        if at == point:
            raise SystemExit("killed")

    with pytest.raises(SystemExit):
        apply_step(store, scaler, policy, pid, sid, run_id="dead", lease_s=30, hook=die)
    return store, clock, policy, pid, sid, scaler


def test_a_killed_runs_write_that_landed_is_recovered_not_written_again() -> None:
    store, clock, policy, pid, sid, scaler = _killed_at("written")
    assert store.get_plan(pid).steps[0].status == StepStatus.APPLYING
    clock.at = T0 + timedelta(seconds=10)
    early = apply_step(store, scaler, policy, pid, sid, run_id="next")
    assert early.outcome == "deferred"  # the dead run's target lease still runs
    clock.at = T0 + timedelta(seconds=31)
    out = apply_step(store, scaler, policy, pid, sid, run_id="next")
    assert out.outcome == "applied" and out.details["recovered"] is True
    assert scaler.write_calls == 1 and len(scaler.actions) == 1
    assert _actions(store, pid) == [
        "step_claimed",
        "step_applying",
        "step_taken_over",
        "step_applied",
    ]


def test_a_killed_run_that_never_wrote_is_written_once_by_the_next() -> None:
    store, clock, policy, pid, sid, scaler = _killed_at("applying")
    clock.at = T0 + timedelta(seconds=31)
    out = apply_step(store, scaler, policy, pid, sid, run_id="next")
    assert out.outcome == "applied" and "recovered" not in out.details
    assert scaler.replicas[KEY] == 8 and len(scaler.actions) == 1
    assert _actions(store, pid).count("step_applying") == 2


@pytest.mark.parametrize("fault", ["unreachable", "conflict"])
def test_a_transient_fault_is_read_back_then_retried(fault: str) -> None:
    (store, _clock), policy = store_at(T0), emails_policy()
    pid = seed_plan(store, policy, (4, 8))
    scaler = FaultyScaler({KEY: 4}, write_faults=[fault])
    out = apply_step(store, scaler, policy, pid, store.get_plan(pid).steps[0].id, retry=NO_WAIT)
    assert out.outcome == "applied" and scaler.write_calls == 2 and len(scaler.actions) == 1
    assert [f["kind"] for f in out.details["faults"]] == [fault]


def test_a_timeout_after_the_patch_landed_is_not_written_twice() -> None:
    (store, _clock), policy = store_at(T0), emails_policy()
    pid = seed_plan(store, policy, (4, 8))
    scaler = FaultyScaler({KEY: 4}, write_faults=["unreachable+landed"])
    out = apply_step(store, scaler, policy, pid, store.get_plan(pid).steps[0].id, retry=NO_WAIT)
    assert out.outcome == "applied" and out.details["landed_after"] == "unreachable"
    assert scaler.write_calls == 1 and len(scaler.actions) == 1


def test_a_conflict_whose_reread_shows_another_count_is_drift_not_overwritten() -> None:
    (store, _clock), policy = store_at(T0), emails_policy()
    pid = seed_plan(store, policy, (4, 8))
    scaler = FaultyScaler({KEY: 4})

    def someone_else(point: str) -> None:
        if point == "applying":  # kubectl scale between the guard's read and the patch
            scaler.set_replicas(policy.target, 6)

    out = apply_step(
        store,
        scaler,
        policy,
        pid,
        store.get_plan(pid).steps[0].id,
        retry=NO_WAIT,
        hook=someone_else,
    )
    assert out.outcome == "refused" and out.details["guard"] == "refuse-drift"
    assert scaler.replicas[KEY] == 6
    assert store.get_plan(pid).steps[0].status == StepStatus.REFUSED
    assert [f["kind"] for f in out.details["faults"]] == ["conflict"]


@pytest.mark.parametrize("fault", ["forbidden", "not_found", "invalid"])
def test_a_permanent_fault_fails_the_step_and_the_plan_at_once(fault: str) -> None:
    (store, _clock), policy = store_at(T0), emails_policy()
    pid = seed_plan(store, policy, (4, 8), (8, 10))
    scaler = FaultyScaler({KEY: 4}, write_faults=[fault])
    out = apply_step(store, scaler, policy, pid, store.get_plan(pid).steps[0].id, retry=NO_WAIT)
    assert out.outcome == "failed" and out.plan_failed and fault in out.reason
    assert scaler.write_calls == 1 and scaler.actions == []
    plan = store.get_plan(pid)
    assert plan.status == PlanStatus.FAILED
    assert [s.status for s in plan.steps] == [StepStatus.FAILED, StepStatus.CANCELLED]


def test_a_permanent_fault_on_the_plans_last_step_fails_the_plan_too() -> None:
    """The last open step made final used to make the plan ``applied`` before it could be
    failed: a plan whose only step was refused by the cluster ended ``applied``."""
    (store, _clock), policy = store_at(T0), emails_policy()
    pid = seed_plan(store, policy, (4, 8))
    scaler = FaultyScaler({KEY: 4}, write_faults=["forbidden"])
    out = apply_step(store, scaler, policy, pid, store.get_plan(pid).steps[0].id, retry=NO_WAIT)
    assert out.outcome == "failed" and out.plan_failed
    plan = store.get_plan(pid)
    assert plan.status == PlanStatus.FAILED and plan.steps[0].status == StepStatus.FAILED
    assert store.audit_events(plan_id=pid, action="applied") == []


def test_transient_faults_to_the_end_leave_the_step_for_a_later_run_to_read_back() -> None:
    (store, clock), policy = store_at(T0), emails_policy()
    pid = seed_plan(store, policy, (4, 8))
    sid = store.get_plan(pid).steps[0].id
    scaler = FaultyScaler({KEY: 4}, write_faults=["unreachable"] * 3)
    out = apply_step(store, scaler, policy, pid, sid, retry=NO_WAIT)
    assert out.outcome == "deferred" and scaler.write_calls == 3
    assert store.get_plan(pid).steps[0].status == StepStatus.APPLYING  # in doubt
    clock.at = T0 + timedelta(seconds=1)
    again = apply_step(store, scaler, policy, pid, sid, retry=NO_WAIT)
    assert again.outcome == "applied" and len(scaler.actions) == 1


def test_another_writer_on_the_target_defers_the_step() -> None:
    (store, _clock), policy = store_at(T0), emails_policy()
    pid = seed_plan(store, policy, (4, 8))
    assert store.acquire_target_lease(target_lock_key(policy.target), holder="other", lease_s=60)
    out = apply_step(store, FaultyScaler({KEY: 4}), policy, pid, store.get_plan(pid).steps[0].id)
    assert out.outcome == "deferred" and "another run" in out.reason
    assert store.get_plan(pid).steps[0].status == StepStatus.PENDING


def test_steps_apply_in_order_and_a_late_step_shifts_the_later_ones() -> None:
    (store, clock), policy = store_at(T0), emails_policy(cooldown_s=300)
    pid = seed_plan(store, policy, (4, 8), (8, 10), (10, 12), spacing_min=5)
    s1, s2, s3 = store.get_plan(pid).steps
    scaler = FaultyScaler({KEY: 4})
    assert apply_step(store, scaler, policy, pid, s2.id).outcome == "deferred"
    clock.at = T0 + timedelta(minutes=1)  # step 1 a minute late
    assert apply_step(store, scaler, policy, pid, s1.id).outcome == "applied"
    steps = store.get_plan(pid).steps
    assert effective_execute_at(steps, s3.id) == s3.execute_at + timedelta(minutes=1)
    # step 2 at its time is inside the cooldown: deferred, not drift
    clock.at = T0 + timedelta(minutes=5)
    out2 = apply_step(store, scaler, policy, pid, s2.id)
    assert out2.outcome == "deferred" and out2.retry_after_s == pytest.approx(60.0)
    assert "cooldown" in out2.reason
    # step 3 comes due while step 2 waits: it waits too (never drift)
    clock.at = T0 + timedelta(minutes=11)
    assert apply_step(store, scaler, policy, pid, s3.id).outcome == "deferred"
    clock.at = T0 + timedelta(minutes=6)
    assert apply_step(store, scaler, policy, pid, s2.id).outcome == "applied"
    clock.at = T0 + timedelta(minutes=11)
    assert apply_step(store, scaler, policy, pid, s3.id).outcome == "applied"
    assert scaler.replicas[KEY] == 12 and len(scaler.actions) == 3
    assert store.audit_events(plan_id=pid, action="drift") == []


def test_a_step_past_its_window_or_of_an_expired_plan_expires_unapplied() -> None:
    (store, clock), policy = store_at(T0), emails_policy()
    pid = seed_plan(store, policy, (4, 8))
    scaler = FaultyScaler({KEY: 4})
    clock.at = T0 + timedelta(minutes=15)
    out = apply_step(store, scaler, policy, pid, store.get_plan(pid).steps[0].id)
    assert out.outcome == "expired" and "window passed" in out.reason
    assert scaler.actions == [] and store.get_plan(pid).steps[0].status == StepStatus.EXPIRED
    (store, clock) = store_at(T0)  # the store's clock never runs backwards
    gone = seed_plan(store, policy, (4, 8), expires_at=T0 + timedelta(minutes=2))
    plan = store.get_plan(gone)
    assert stale_reason(plan, plan.steps[0], T0 + timedelta(minutes=3), 900) == (
        f"plan {gone} expired at {plan.expires_at.isoformat()}"
    )
    clock.at = T0 + timedelta(minutes=3)
    out = apply_step(store, scaler, policy, gone, plan.steps[0].id)
    assert out.outcome == "expired" and scaler.actions == []


def test_apply_due_reports_public_outcomes_and_a_finished_step_as_noop() -> None:
    (store, clock), policy = store_at(T0), emails_policy()
    pid = seed_plan(store, policy, (4, 8), (8, 10), spacing_min=1)
    scaler = FaultyScaler({KEY: 4})
    clock.at = T0 + timedelta(minutes=2)
    first = apply_due(store, lambda _p, _s: scaler, run=DueRun("a"))
    assert [(d["plan_id"], d["outcome"]) for d in first] == [(pid, "applied"), (pid, "applied")]
    assert apply_due(store, lambda _p, _s: scaler, run=DueRun("b")) == []
    out = apply_step(store, scaler, policy, pid, store.get_plan(pid).steps[0].id)
    assert out.outcome == "already-applied"


def test_runs_on_one_target_serialize_a_waiting_run_goes_once_the_lease_is_free() -> None:
    (store, _clock), policy = store_at(T0), emails_policy()
    pid = seed_plan(store, policy, (4, 8))
    key = target_lock_key(policy.target)
    assert store.acquire_target_lease(key, holder="other", lease_s=60)
    # the other run finishes while this one waits (its pause releases the lease)
    waits = RetryPolicy(sleep=lambda _s: store.release_target_lease(key, holder="other"))
    scaler = FaultyScaler({KEY: 4})
    out = apply_step(
        store, scaler, policy, pid, store.get_plan(pid).steps[0].id, retry=waits, lease_wait_s=5.0
    )
    assert out.outcome == "applied" and len(scaler.actions) == 1


def test_a_plan_found_days_after_it_was_made_expires_whatever_its_as_of() -> None:
    (store, clock), policy = store_at(T0), emails_policy()
    pid = seed_plan(
        store, policy, (4, 8), (8, 10), spacing_min=30, expires_at=T0 + timedelta(hours=1)
    )
    scaler = FaultyScaler({KEY: 4})
    clock.at = T0 + timedelta(minutes=1)
    first = apply_due(store, lambda _p, _s: scaler, run=DueRun("a"))
    assert [d["outcome"] for d in first] == ["applied"]  # step 2 is 29 minutes away
    clock.at = T0 + timedelta(days=2)  # an apply-due run days later
    again = apply_due(store, lambda _p, _s: scaler, run=DueRun("b"))
    assert [d["outcome"] for d in again] == ["expired"]
    assert scaler.replicas[KEY] == 8 and len(scaler.actions) == 1
    assert [s.status for s in store.get_plan(pid).steps] == [StepStatus.APPLIED, StepStatus.EXPIRED]
