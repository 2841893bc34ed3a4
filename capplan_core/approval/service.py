"""The approval use cases over the plan store (no Prefect): what the approve stage, the
approve-plan run and the CLI do, each written once.

* :func:`apply_policy` -- a new plan meets its policy (:func:`.rules.policy_verdict`): it is
  recorded, approved as capplan (maybe up to a cap), held, or left for a person with an
  approval deadline on the store's clock; every outcome audited;
* :func:`authenticate` -- a person's submission is checked before anything is stored: a
  listed approver, not a requester where the policy forbids it, and the approval code of this
  very decision under their own key; a refusal is audited;
* :func:`record_decision` -- the decision is stored once (or the plan expires when none
  came); a stale plan or a refused cap is audited, never applied;
* :func:`why_refused` -- the same refusal the store's transaction would give, asked up front.

Each returns what happened; the caller (a Prefect task) logs it and emits the events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from capplan_core.approval import authority
from capplan_core.approval.auth import DecisionClaim, authorization_problem, code_problem
from capplan_core.approval.refusals import cap_refusal, stale_plan_problem
from capplan_core.approval.rules import Verdict, policy_verdict
from capplan_core.approval.signature import is_token
from capplan_core.approval.signed import SIGNATURE_DETAIL, signed_decision_problem
from capplan_core.planning.decide import Decision
from capplan_core.planning.errors import CapRefused, DecisionConflict
from capplan_core.planning.repository import PlanRepository
from capplan_core.planning.stored_plan import PlanStatus
from capplan_core.policy import Mode, ScalingPolicy

#: who approves a plan by policy (``auto``), in the audit trail (:mod:`.authority` checks it)
AUTO_ACTOR = authority.AUTO_ACTOR
#: after this many refused submissions (wrong code, unlisted approver) a plan's form takes no
#: more: guessing a 64-bit code is hopeless anyway, but nobody gets unlimited tries
MAX_REFUSED_ATTEMPTS = 10


@dataclass(frozen=True)
class PolicyOutcome:
    """What the policy did with a new plan: ``execute`` it now, ``ask_person``, or neither
    (recorded, advisory, held); ``reason`` says which and why. ``events``: the plan events
    to emit, ``(what, reason)``, in order."""

    verdict: Verdict
    reason: str
    execute: bool = False
    ask_person: bool = False
    alert: str | None = None
    events: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True)
class Approval:
    """A decision as stored: approved or not, by whom, with the approver's limits."""

    approved: bool
    actor: str
    max_workers: int | None = None
    apply_hours: float | None = None
    refused: str | None = None  # why a decision was refused (stale plan, cap), if it was
    ended: str | None = None  # why the wait ended without a decision (superseded, cancelled)
    event: str | None = None  # the plan event to emit (approved, rejected, expired)


@dataclass(frozen=True)
class Refusal:
    """A submission that was not accepted as a decision: the run keeps waiting."""

    reason: str


@dataclass(frozen=True)
class Submission:
    """A person's decision as the approval form (or the CLI) gives it."""

    decision: str
    approver: str
    code: str
    comment: str = ""
    max_workers: int | None = None
    apply_hours: float | None = None


def apply_policy(
    store: PlanRepository, policy: ScalingPolicy, plan_id: int, decision: Decision, flow_run_id: str
) -> PolicyOutcome:
    """Apply the policy to a newly stored plan (see :func:`.rules.policy_verdict`)."""
    now = store.now()
    v = policy_verdict(policy, decision, now=now)
    events: list[tuple[str, str | None]] = []
    if v.alert:
        store.audit(
            "slo_alert",
            actor="capplan",
            plan_id=plan_id,
            queue=policy.queue,
            details={
                "alert": v.alert,
                "confidence": decision.confidence,
                "slo_achievable": decision.slo_achievable,
            },
        )
        events.append(("slo-alert", v.alert))
    if v.verdict in (Verdict.APPROVE, Verdict.APPROVE_CAPPED, Verdict.RECORD):
        store.transition(
            plan_id,
            PlanStatus.APPROVED,
            actor=AUTO_ACTOR,
            comment=v.reason,
            details={"max_workers": v.cap} if v.cap is not None else None,
        )
        if v.verdict == Verdict.RECORD:  # no step: nothing left to apply
            store.transition(plan_id, PlanStatus.APPLIED, actor="capplan", comment=v.reason)
        events.append(("approved", v.reason))
        return PolicyOutcome(
            v.verdict,
            v.reason,
            execute=v.verdict != Verdict.RECORD,
            alert=v.alert,
            events=tuple(events),
        )
    if v.verdict == Verdict.HOLD:
        store.transition(plan_id, PlanStatus.HELD, actor="capplan", comment=v.reason)
        events.append(("held", v.reason))
        return PolicyOutcome(v.verdict, v.reason, alert=v.alert, events=tuple(events))
    if v.verdict == Verdict.ADVISORY:
        return PolicyOutcome(v.verdict, v.reason)
    store.set_flow_run(
        plan_id,
        flow_run_id,
        approval_deadline=now + timedelta(seconds=policy.approval.timeout_seconds),
    )
    if policy.mode == Mode.AUTO:
        store.audit(
            "auto_fallback_manual",
            actor="capplan",
            plan_id=plan_id,
            queue=policy.queue,
            details={"reason": v.reason},
        )
    events.append(("awaiting-approval", v.reason))
    return PolicyOutcome(v.verdict, v.reason, ask_person=True, alert=v.alert, events=tuple(events))


def authenticate(
    store: PlanRepository,
    policy: ScalingPolicy,
    plan_id: int,
    sub: Submission,
    requested_by: str,
    approver_key: Callable[[str], str],
) -> Refusal | None:
    """None when ``sub`` is an authorized approver's own decision; else the refusal, audited
    as ``decision_refused``. Checked before anything is stored.

    The approver must be listed in the plan's policy version (``approval.approvers``), not be
    a requester when ``approval.require_distinct_requester`` (who asked for the cycle, who
    applied that policy version), and the approval code must be the HMAC of this decision
    under their own key (``approver_key(name)``, which raises ``LookupError`` with the reason
    when the key cannot be had; it is never logged). After :data:`MAX_REFUSED_ATTEMPTS`
    refused submissions the plan's form takes no more (a lock-out, audited like any refusal).
    """
    plan = store.get_plan(plan_id)
    version = plan.details.get("policy_version")
    applied_by = store.policy_version(policy.name, int(version)).applied_by if version else ""
    refused = [
        e
        for e in store.audit_events(plan_id=plan_id, action="decision_refused")
        if e.details.get("authenticated") is False
    ]
    reason = (
        f"plan {plan_id} takes no more decisions: {len(refused)} submissions were refused "
        f"(at most {MAX_REFUSED_ATTEMPTS}); the next cycle makes a new plan"
        if len(refused) >= MAX_REFUSED_ATTEMPTS
        else authorization_problem(policy, sub.approver, [requested_by, applied_by])
    )
    if reason is None:
        reason = _proof_problem(store, policy, plan_id, sub, approver_key)
    if reason is None:
        return None
    store.audit(
        "decision_refused",
        actor=sub.approver,
        plan_id=plan_id,
        queue=policy.queue,
        details={"decision": sub.decision, "reason": reason, "authenticated": False},
    )
    return Refusal(reason)


def _proof_problem(
    store: PlanRepository,
    policy: ScalingPolicy,
    plan_id: int,
    sub: Submission,
    approver_key: Callable[[str], str],
) -> str | None:
    """Why ``sub``'s proof (a signed decision, or an approval code where the policy takes
    codes) does not prove this very decision; None when it does."""
    if is_token(sub.code):
        return signed_decision_problem(
            sub.code,
            approver=sub.approver,
            decision=sub.decision,
            max_workers=sub.max_workers,
            apply_hours=sub.apply_hours,
            plan=store.get_plan(plan_id),
            store_id=store.store_id(),
            public_keys=store.approver_public_keys(sub.approver),
            now=store.now(),
        )
    if policy.approval.proof == "signature":
        return (
            f"policy {policy.name!r} takes signed decisions only (approval.proof: signature): "
            "sign it with `capplan approvals sign` and paste the token, not an approval code"
        )
    try:
        key = approver_key(sub.approver)
    except LookupError as err:
        return f"approver {sub.approver!r} has no key: {err}"
    return code_problem(
        DecisionClaim(
            plan_id=plan_id,
            decision=sub.decision,
            approver=sub.approver,
            code=sub.code,
            max_workers=sub.max_workers,
            apply_hours=sub.apply_hours,
        ),
        key,
    )


def record_decision(
    store: PlanRepository, policy: ScalingPolicy, plan_id: int, sub: Submission | None
) -> Approval:
    """Store the person's (authenticated) decision once, or expire the plan when ``sub`` is
    None (no decision came). A stale plan, a refused cap or a plan decided meanwhile is
    audited ``decision_refused`` and nothing runs."""
    if sub is None:
        try:
            store.transition(
                plan_id,
                PlanStatus.EXPIRED,
                actor="capplan",
                comment=f"no decision within {policy.approval.timeout_seconds:.0f} s",
            )
        except DecisionConflict as err:  # superseded by a newer plan while it waited
            return Approval(False, "capplan", refused=str(err))
        return Approval(False, "capplan", event="expired")
    status = PlanStatus.APPROVED if sub.decision == "approve" else PlanStatus.REJECTED
    try:
        store.transition(
            plan_id,
            status,
            actor=sub.approver,
            comment=sub.comment,
            details={
                "max_workers": sub.max_workers,
                "apply_hours": sub.apply_hours,
                # the proof, kept with the decision: the write checks it again
                **_proof_details(sub.code),
            },
        )
    except (DecisionConflict, CapRefused) as err:
        store.audit(
            "decision_refused",
            actor=sub.approver,
            plan_id=plan_id,
            queue=policy.queue,
            details={"decision": sub.decision, "reason": str(err)},
        )
        return Approval(False, sub.approver, refused=str(err))
    return Approval(
        status == PlanStatus.APPROVED,
        sub.approver,
        sub.max_workers,
        sub.apply_hours,
        event=status.value,
    )


def _proof_details(code: str) -> dict[str, str]:
    if is_token(code):
        return {"authenticated": "signature", SIGNATURE_DETAIL: code.strip()}
    return {"authenticated": "approval-code", authority.CODE_DETAIL: code.strip().lower()}


def why_refused(store: PlanRepository, plan_id: int, max_workers: int | None) -> str | None:
    """Why approving ``plan_id`` (with the cap ``max_workers``) would be refused; None if not.

    The same rules, and words, the store applies in the approval's transaction, checked up
    front so the CLI can say why before it resumes the run."""
    plan = store.get_plan(plan_id)
    newer = store.newer_plan(plan_id)
    return stale_plan_problem(
        plan_id, plan.queue, None if newer is None else (newer.id, str(newer.status))
    ) or cap_refusal(plan_id, max_workers, plan.current_workers)
