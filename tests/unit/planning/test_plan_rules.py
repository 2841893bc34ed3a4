"""The plan store's rules, written once (capplan_core/planning/plan_rules.py): what each write
does to a plan and the audit row it leaves. Both stores only apply these; the repository
contract test holds them to one history."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from capplan_core.planning import plan_rules as rules
from capplan_core.planning.errors import CapRefused, DecisionConflict, StalePlan
from capplan_core.planning.stored_plan import PlanStatus, StepStatus

PLAN = rules.PlanFacts(
    7, "emails", "proposed", None, 4, ((4, 10, {"window": 1}), (10, 14, {}), (14, 6, {}))
)


def test_approving_with_a_cap_clips_the_steps_and_keeps_the_planned_counts() -> None:
    change = rules.transition(
        PLAN, PlanStatus.APPROVED, actor="frank", comment="ok", details={"max_workers": 8}
    )
    assert change.status == PlanStatus.APPROVED and change.decided_by == "frank"
    assert change.decision_comment == "ok" and not change.cancel_pending
    assert [(e.index, e.from_workers, e.to_workers) for e in change.step_edits] == [
        (0, 4, 8),
        (1, 8, 8),
        (2, 8, 6),
    ]
    assert change.step_edits[0].explanation == {
        "window": 1,
        "planned": {"from_workers": 4, "to_workers": 10},
        "capped_by": 8,
    }
    assert change.audit == rules.AuditDraft(
        "approved", 7, "emails", {"comment": "ok", "max_workers": 8}, actor="frank"
    )


def test_a_refused_move_changes_nothing_and_says_why() -> None:
    with pytest.raises(StalePlan, match="9"):
        rules.transition(PLAN, PlanStatus.APPROVED, actor="frank", newer=(9, "proposed"))
    with pytest.raises(CapRefused):
        rules.transition(PLAN, PlanStatus.APPROVED, actor="frank", details={"max_workers": 3})
    decided = rules.PlanFacts(7, "emails", "rejected", "ann", 4)
    with pytest.raises(DecisionConflict, match="ann"):
        rules.transition(decided, PlanStatus.APPROVED, actor="frank")


@pytest.mark.parametrize(
    "to, cancels",
    [(PlanStatus.REJECTED, True), (PlanStatus.EXPIRED, True), (PlanStatus.CANCELLED, True)],
)
def test_decisions_that_end_a_plan_cancel_its_pending_steps(to: PlanStatus, cancels: bool) -> None:
    change = rules.transition(PLAN, to, actor="capplan", comment="why")
    assert change.cancel_pending is cancels and change.step_edits == ()
    assert change.decided_by == "capplan" and change.audit.action == to.value


def test_each_supersede_names_its_cause() -> None:
    newer = rules.superseded_by_newer(3, "emails", 4)
    assert (newer.status, newer.cancel_pending) == (PlanStatus.SUPERSEDED, True)
    assert newer.audit.details == {"by_plan": 4, "reason": "a newer plan was proposed"}
    assert rules.superseded_by_approval(3, "emails", 5).audit.details == {"by_plan": 5}
    assert rules.superseded_as_outdated(3, "emails", 1, 2).audit.details == {
        "reason": "made under policy version 1; the policy is at version 2 now",
        "policy_version": 1,
    }
    change = rules.superseded_by_policy_change(3, "emails", "approved", "emails", 2, "ops")
    assert change.audit.actor == "ops" and change.audit.details["was"] == "approved"
    assert change.decided_by is None  # a supersede is not a person's decision


def test_approval_supersedes_every_other_live_plan_of_the_queue() -> None:
    assert [
        c.plan_id for c in rules.live_to_supersede(PLAN.id, [(5, "emails"), (7, "emails")])
    ] == [5]


def test_outdated_only_for_a_stored_plan_made_under_another_version() -> None:
    assert rules.outdated(1, 2, skipped=False) == 1
    assert rules.outdated("1", 2, skipped=False) == 1  # as stored in a plan's details
    assert rules.outdated(2, 2, skipped=False) is None
    assert rules.outdated(1, 2, skipped=True) is None
    assert rules.outdated(None, 2, skipped=False) is None


def test_an_approved_plan_is_applied_once_every_step_is_final() -> None:
    assert rules.plan_done("approved", ["applied", "noop", "expired"])
    assert not rules.plan_done("approved", ["applied", "pending"])
    assert not rules.plan_done("superseded", ["applied"])


def test_step_moves_follow_the_step_machine() -> None:
    rules.check_step_move(1, StepStatus.PENDING, StepStatus.EXPIRED, owner=None)
    with pytest.raises(DecisionConflict, match="step 1 cannot move"):
        rules.check_step_move(1, StepStatus.APPLIED, StepStatus.PENDING, owner="run")
    until = datetime(2026, 12, 6, tzinfo=UTC)
    assert rules.moved_step_fields(StepStatus.APPLIED, new_owner="r", lease_until=until) == {
        "status": StepStatus.APPLIED,
        "claimed_by": None,
        "lease_until": None,
    }
    assert rules.moved_step_fields(StepStatus.APPLYING, new_owner="r", lease_until=None) == {
        "status": StepStatus.APPLYING,
        "claimed_by": "r",
    }
