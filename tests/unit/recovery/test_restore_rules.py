"""The restore rule (capplan_core.recovery): noticing a restore, the in-doubt fence, settling
a step by its live count without a write, expiring overdue approvals; and why the guard alone
is not enough (the A -> B -> A case)."""

from __future__ import annotations

from datetime import timedelta

from capplan_core.execution.guard import GuardAction, check_step
from capplan_core.execution.scaler import DryRunScaler
from capplan_core.planning.stored_plan import AuditEntry, PlanStatus, StepStatus
from capplan_core.recovery import (
    RECOVERED_ACTION,
    RESTORED_ACTION,
    RESTORED_REASON,
    StoreMark,
    already_noticed,
    in_doubt,
    overdue_approvals,
    pending_restore,
    settle,
    went_back,
)
from tests.unit.execution.execution_plans import T0, emails_policy, seed_plan, store_at

PG_A = "7716270446600093680:1"
PG_B = "7716270446600093680:2"


def mark(lineage: str | None, plan: int = 10, step: int = 20, audit: int = 30) -> StoreMark:
    return StoreMark(lineage, plan, step, audit)


def test_nothing_to_compare_before_a_mark_is_kept() -> None:
    assert went_back(None, mark(PG_A)) is None


def test_a_new_timeline_is_a_restore_and_the_reason_names_both_lineages() -> None:
    why = went_back(mark(PG_A), mark(PG_B, 12, 25, 40))
    assert why is not None and PG_A in why and PG_B in why


def test_one_timeline_never_went_back_even_when_ids_restart() -> None:
    # TRUNCATE ... RESTART IDENTITY on one timeline is not a restore
    assert went_back(mark(PG_A), mark(PG_A, 1, 1, 1)) is None


def test_without_a_lineage_ids_behind_the_mark_are_a_restore() -> None:
    why = went_back(mark(None), mark(None, 10, 18, 31))
    assert why == ("the store's newest rows are older than seen before: step id 18 < 20")
    assert went_back(mark(None), mark(None, 11, 20, 30)) is None


def test_marks_round_trip_and_the_later_one_wins_id_by_id() -> None:
    m = mark(PG_A)
    assert StoreMark.from_dict(m.as_dict()) == m
    assert m.ahead_of(mark(PG_B, 5, 50, 3)) == StoreMark(PG_A, 10, 50, 30)


def _entry(i: int, action: str, **details: object) -> AuditEntry:
    return AuditEntry(i, T0, "x", action, None, None, dict(details))


def test_a_restore_is_pending_until_a_recovery_is_audited_after_it() -> None:
    restored = _entry(5, RESTORED_ACTION, lineage=PG_B)
    assert pending_restore([restored]) == restored
    assert pending_restore([_entry(6, RECOVERED_ACTION), restored]) is None
    later = _entry(7, RESTORED_ACTION, lineage="x:3")
    assert pending_restore([restored, _entry(6, RECOVERED_ACTION), later]) == later
    assert already_noticed([restored], mark(PG_B))
    assert not already_noticed([restored], mark(PG_A))


def test_in_doubt_are_the_open_steps_of_approved_plans_due_by_the_fence() -> None:
    store, _ = store_at()
    policy = emails_policy()
    approved = seed_plan(store, policy, (2, 4), (4, 6), (6, 8), spacing_min=30)
    seed_plan(store, policy, (2, 9), approve=False)  # proposed: never applied, not in doubt
    plans = store.list_plans(limit=10)
    fence = T0 + timedelta(minutes=30)  # steps at T0 and T0+30 min were due
    got = [(p.id, s.seq) for p, s in in_doubt(plans, fence)]
    assert got == [(approved, 0), (approved, 1)]


def test_a_step_at_its_target_had_been_applied_and_is_never_written_again() -> None:
    store, _ = store_at()
    pid = seed_plan(store, emails_policy(), (2, 4))
    step = store.get_plan(pid).steps[0]
    noop = settle(step, StepStatus.CLAIMED, 4, T0)
    assert noop.status == StepStatus.NOOP and noop.reason.startswith(RESTORED_REASON)
    # an intent the restored store held: the write had landed
    assert settle(step, StepStatus.APPLYING, 4, T0).status == StepStatus.APPLIED


def test_a_step_off_its_target_may_have_been_applied_and_expires_unwritten() -> None:
    store, _ = store_at()
    pid = seed_plan(store, emails_policy(), (2, 4))
    step = store.get_plan(pid).steps[0]
    for live in (2, 3, None):
        got = settle(step, StepStatus.CLAIMED, live, T0)
        assert got.status == StepStatus.EXPIRED, live
        assert "may have been applied" in got.reason and "not written" in got.reason


def test_the_guard_alone_would_write_a_step_twice_after_a_restore() -> None:
    """A -> B then B -> A were applied after the backup; the restored store has both pending.
    The live count is back at the first step's from_workers: the guard says apply."""
    store, _ = store_at()
    policy = emails_policy(cooldown_s=0)
    pid = seed_plan(store, policy, (2, 4), (4, 2))
    first = store.get_plan(pid).steps[0]
    verdict = check_step(first, 2, first.from_workers, None, T0, policy)
    assert verdict.action == GuardAction.APPLY  # a second write, without the fence


def test_settling_the_a_b_a_case_writes_nothing() -> None:
    from capplan_adapters.restore_watch import settle_restore

    store, clock = store_at()
    policy = emails_policy(cooldown_s=0)
    pid = seed_plan(store, policy, (2, 4), (4, 2), spacing_min=1)
    clock.at = T0 + timedelta(minutes=3)
    store.audit(
        RESTORED_ACTION, actor="test", details={"lineage": PG_B, "fence_at": clock.at.isoformat()}
    )
    entry = store.audit_events(action=RESTORED_ACTION)[-1]
    scaler = DryRunScaler({"workers/email-worker": 2})
    out = settle_restore(store, lambda plan, step_id: scaler, entry)
    assert out["steps"] == {"expired": 1, "noop": 1} and out["held_back"] == []
    assert scaler.actions == []  # nothing written
    plan = store.get_plan(pid)
    assert [s.status for s in plan.steps] == [StepStatus.EXPIRED, StepStatus.NOOP]
    assert plan.status == PlanStatus.APPLIED  # every step final
    recovered = store.audit_events(action=RECOVERED_ACTION)
    assert len(recovered) == 1 and recovered[0].details["restore_audit_id"] == entry.id


def test_plans_past_their_approval_deadline_expire_restored_from_backup() -> None:
    from capplan_adapters.restore_watch import settle_restore

    store, clock = store_at()
    policy = emails_policy()
    late = seed_plan(store, policy, (2, 4), approve=False)
    store.set_flow_run(late, "run-late", approval_deadline=T0 + timedelta(minutes=5))
    other = emails_policy().model_copy(
        update={
            "name": "other",
            "queue": "other",
            "target": policy.target.model_copy(update={"name": "other-worker"}),
        }
    )
    waiting = seed_plan(store, other, (2, 3), approve=False)
    store.set_flow_run(waiting, "run-waiting", approval_deadline=T0 + timedelta(hours=2))
    clock.at = T0 + timedelta(minutes=10)
    assert overdue_approvals(store.list_plans(limit=10), clock.at) == [late]
    store.audit(RESTORED_ACTION, actor="test", details={"fence_at": clock.at.isoformat()})
    out = settle_restore(
        store, lambda plan, step_id: DryRunScaler(), store.audit_events(action=RESTORED_ACTION)[-1]
    )
    assert out["plans_expired"] == [late]
    expired = store.get_plan(late)
    assert expired.status == PlanStatus.EXPIRED
    assert expired.decision_comment is not None
    assert expired.decision_comment.startswith(RESTORED_REASON)
    assert store.get_plan(waiting).status == PlanStatus.PROPOSED  # still resumable
