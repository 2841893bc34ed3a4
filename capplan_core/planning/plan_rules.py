"""The plan store's rules, written once (pure): what a write does to plans and its audit rows.

Both stores (the SQLAlchemy one and the in-memory fake, in ``capplan_adapters/store/``) only
*apply* what these functions return: a :class:`PlanUpdate` (the plan's new status, whether its
pending steps are cancelled, the decision fields, the steps an approver's cap changed) with the
:class:`AuditDraft` that records it. So supersede, cancel, cap, decide and "all steps done ->
applied" cannot drift apart between the stores; the contract test
(``tests/integration/store/test_repository_contract.py``) holds both to one history.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from capplan_core.approval.cap import capped_steps
from capplan_core.planning.errors import DecisionConflict
from capplan_core.planning.stored_plan import (
    CANCELS_STEPS,
    DECISIONS,
    STEP_FINAL,
    AuditEntry,
    PlanStatus,
    StepStatus,
    StoredPlan,
    check_approvable,
    check_transition,
    step_may_move,
)

NEWER_PLAN_PROPOSED = "a newer plan was proposed"
#: the plans a policy change supersedes: made under the old version, not yet done
SUPERSEDED_BY_POLICY_CHANGE = (PlanStatus.PROPOSED, PlanStatus.APPROVED, PlanStatus.APPLIED)


@dataclass(frozen=True)
class AuditDraft:
    """An audit row to write with the change it records."""

    action: str
    plan_id: int
    queue: str | None
    details: dict[str, Any]
    actor: str = "capplan"


@dataclass(frozen=True)
class StepEdit:
    """A step whose counts an approver's cap changed: its position in the plan (0-based, in
    ``seq`` order), the new counts, and its explanation with the planned counts kept."""

    index: int
    from_workers: int
    to_workers: int
    explanation: dict[str, Any]


@dataclass(frozen=True)
class PlanUpdate:
    """What one write does to one plan. ``decided_by`` is set for decisions (approve, reject,
    expire, cancel), with ``decision_comment``; the store stamps ``decided_at`` on its clock."""

    plan_id: int
    status: PlanStatus
    audit: AuditDraft
    cancel_pending: bool = False
    decided_by: str | None = None
    decision_comment: str | None = None
    step_edits: tuple[StepEdit, ...] = field(default=())


@dataclass(frozen=True)
class PlanFacts:
    """What the rules read of a plan: its steps as (from, to, explanation) in ``seq`` order."""

    id: int
    queue: str
    status: str
    decided_by: str | None
    current_workers: int | None
    steps: tuple[tuple[int, int, dict[str, Any]], ...] = ()

    @classmethod
    def of(cls, plan: StoredPlan) -> PlanFacts:
        return cls(
            plan.id,
            plan.queue,
            str(plan.status),
            plan.decided_by,
            plan.current_workers,
            tuple((s.from_workers, s.to_workers, dict(s.explanation)) for s in plan.steps),
        )


# -- supersede --------------------------------------------------------------------------------
def superseded_by_newer(plan_id: int, queue: str, newer_id: int) -> PlanUpdate:
    """A proposed plan replaced by a newer plan of its queue."""
    return _superseded(plan_id, queue, {"by_plan": newer_id, "reason": NEWER_PLAN_PROPOSED})


def superseded_by_approval(plan_id: int, queue: str, approved_id: int) -> PlanUpdate:
    """A live plan replaced because another plan of its queue was approved."""
    return _superseded(plan_id, queue, {"by_plan": approved_id})


def superseded_as_outdated(plan_id: int, queue: str, made_under: int, current: int) -> PlanUpdate:
    """A plan made under a policy version that changed while it was planned: nothing executes
    under a version that is no longer the policy."""
    return _superseded(
        plan_id,
        queue,
        {
            "reason": f"made under policy version {made_under}; the policy is at version "
            f"{current} now",
            "policy_version": made_under,
        },
    )


def superseded_by_policy_change(
    plan_id: int, queue: str, was: str, policy: str, version: int, actor: str
) -> PlanUpdate:
    """A proposed or live plan of a policy that changed: it was made under the old version."""
    return PlanUpdate(
        plan_id,
        PlanStatus.SUPERSEDED,
        cancel_pending=True,
        audit=AuditDraft(
            "superseded",
            plan_id,
            queue,
            {
                "reason": f"policy {policy!r} changed to version {version}",
                "was": was,
                "policy_version": version,
            },
            actor=actor,
        ),
    )


def outdated(made_under: Any, current: int, skipped: bool) -> int | None:
    """The policy version a new plan was made under when it is superseded at once (made
    under a version that is no longer ``current``); None when it stands."""
    if skipped or made_under is None or int(made_under) == current:
        return None
    return int(made_under)


def _superseded(plan_id: int, queue: str, details: dict[str, Any]) -> PlanUpdate:
    return PlanUpdate(
        plan_id,
        PlanStatus.SUPERSEDED,
        cancel_pending=True,
        audit=AuditDraft("superseded", plan_id, queue, details),
    )


# -- decide -----------------------------------------------------------------------------------
def transition(
    plan: PlanFacts,
    to: PlanStatus,
    *,
    actor: str,
    comment: str | None = None,
    details: dict[str, Any] | None = None,
    newer: tuple[int, str] | None = None,
) -> PlanUpdate:
    """A plan moved to ``to`` by ``actor``, audited.

    Approving checks that the plan is its queue's newest (``newer``: the (id, status) of a
    newer plan, if any) and the approver's cap (``details["max_workers"]``), which clips the
    steps (later steps start from the capped counts). Decisions are made once.

    Raises:
        StalePlan, CapRefused, DecisionConflict: the move is refused (nothing changes).
    """
    cap = (details or {}).get("max_workers")
    if to == PlanStatus.APPROVED:
        check_approvable(plan.id, plan.queue, plan.current_workers, cap, newer)
    check_transition(plan.id, plan.status, plan.decided_by, to)
    edits = cap_edits(plan, int(cap)) if to == PlanStatus.APPROVED and cap is not None else ()
    decided = to in DECISIONS
    return PlanUpdate(
        plan.id,
        to,
        cancel_pending=to in CANCELS_STEPS,
        decided_by=actor if decided else None,
        decision_comment=comment if decided else None,
        step_edits=edits,
        audit=AuditDraft(
            to.value, plan.id, plan.queue, {"comment": comment, **(details or {})}, actor=actor
        ),
    )


def cap_edits(plan: PlanFacts, max_workers: int) -> tuple[StepEdit, ...]:
    """The steps an approver's cap changes; the planned counts stay in each explanation."""
    if not plan.steps:
        return ()
    start = plan.steps[0][0]
    capped = capped_steps(start, [(f, t) for f, t, _ in plan.steps], max_workers)
    return tuple(
        StepEdit(
            i,
            frm,
            to,
            {
                **explanation,
                "planned": {"from_workers": f, "to_workers": t},
                "capped_by": max_workers,
            },
        )
        for i, ((f, t, explanation), (frm, to)) in enumerate(zip(plan.steps, capped, strict=True))
        if (frm, to) != (f, t)
    )


def live_to_supersede(approved_id: int, live: Iterable[tuple[int, str]]) -> list[PlanUpdate]:
    """Approving plan ``approved_id`` supersedes the other live plans of its queue, ``live``
    being the (id, queue) of the queue's live plans."""
    return [
        superseded_by_approval(pid, queue, approved_id) for pid, queue in live if pid != approved_id
    ]


def approval_limits(approvals: Sequence[AuditEntry]) -> dict[str, Any]:
    """The narrowing limits an approver gave (``max_workers``, ``apply_hours``), from the
    plan's ``approved`` audit rows (the first one: a plan is approved once)."""
    for ev in approvals:
        return {k: ev.details.get(k) for k in ("max_workers", "apply_hours")}
    return {}


# -- steps ------------------------------------------------------------------------------------
def step_audit(
    plan_id: int,
    queue: str | None,
    step_id: int,
    frm: str,
    to: str,
    *,
    action: str,
    actor: str,
    details: dict[str, Any],
) -> AuditDraft:
    """The audit row of a step's move."""
    return AuditDraft(
        action,
        plan_id,
        queue,
        {"step_id": step_id, "from_status": frm, "to_status": to, **details},
        actor=actor,
    )


def plan_done(status: str, step_statuses: Sequence[str]) -> bool:
    """An approved plan whose every step reached a final state is ``applied``."""
    return status == PlanStatus.APPROVED and all(s in STEP_FINAL for s in step_statuses)


def check_step_move(step_id: int, frm: StepStatus, to: StepStatus, *, owner: str | None) -> None:
    """Raise :class:`DecisionConflict` unless a step may move ``frm`` -> ``to``: along the step
    state machine, or straight from pending to a final state when nobody holds it."""
    direct = owner is None and frm == StepStatus.PENDING and to in STEP_FINAL
    if not (direct or step_may_move(frm, to)):
        raise DecisionConflict(f"step {step_id} cannot move {frm.value} -> {to.value}")


def moved_step_fields(
    to: StepStatus, *, new_owner: str | None, lease_until: datetime | None
) -> dict[str, Any]:
    """The step's fields after a move (the store stamps ``applied_at`` on its clock when the
    state is final): a final or pending step is held by nobody; otherwise ``new_owner`` holds
    it, until ``lease_until`` when given (else the lease it had)."""
    if to in STEP_FINAL or to == StepStatus.PENDING:
        return {"status": to, "claimed_by": None, "lease_until": None}
    fields: dict[str, Any] = {"status": to, "claimed_by": new_owner}
    if lease_until is not None:
        fields["lease_until"] = lease_until
    return fields
