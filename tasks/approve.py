"""Approve stage: by policy (auto), or a person's decision on the approval form.

:func:`approve` (task) applies the policy; when a person must decide, the flow waits in
:func:`decide_by_person`: :func:`wait_for_approver` (a pause, or with ``approval.suspend`` on a
deployed run a suspension that releases its infrastructure; Prefect suspends flows, not tasks,
so this runs in the flow), :func:`authenticate_decision` (task: a listed approver's own code,
else refused and the run waits again) and :func:`record_approval` (task) stores the decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from prefect import get_run_logger
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import apause_flow_run, asuspend_flow_run
from prefect.input import RunInput
from prefect.runtime import deployment as current_deployment
from pydantic import Field, create_model

from capplan_app.bootstrap import plan_store
from capplan_app.secrets import SecretUnavailable, resolve_secret
from capplan_core.planning.approval_rules import Verdict, policy_verdict
from capplan_core.planning.approver_auth import (
    CODE_CHARS,
    CODE_PATTERN,
    DecisionClaim,
    authorization_problem,
    code_problem,
    key_ref,
)
from capplan_core.planning.decide import Decision
from capplan_core.planning.errors import CapRefused, DecisionConflict
from capplan_core.planning.markdown import plan_markdown
from capplan_core.planning.stored_plan import PlanStatus
from capplan_core.policy import APPROVER_NAME, Mode, ScalingPolicy
from tasks.approval_runs import WaitEnded, watched
from tasks.common import capplan_io_task
from tasks.events import emit_plan_event


class ApprovalInput(RunInput):
    """Approve or reject a capacity plan; the optional limits only ever narrow it.

    No field has a default decision: a person must choose. ``approval_code`` proves the
    approver made exactly this decision (``capplan approvals code``; docs/security.md).
    """

    decision: Literal["approve", "reject"] = Field(
        description="approve applies the plan; reject applies nothing (no default: choose)"
    )
    approver: str = Field(min_length=1, max_length=63, pattern=APPROVER_NAME,
                          description="who decides: a name in the policy's approval.approvers")
    approval_code: str = Field(
        min_length=CODE_CHARS, max_length=CODE_CHARS, pattern=CODE_PATTERN,
        description="from `capplan approvals code PLAN --decision approve|reject` with your key "
                    "(binds this decision and these limits on this plan)")
    comment: str = Field("", max_length=2000)
    max_workers: int | None = Field(
        None, ge=1, description="optional: cap the plan's worker count lower than planned "
        "(never below the current count, never 0)"
    )
    apply_hours: float | None = Field(
        None, gt=0, le=24 * 7, description="optional: apply only the steps in the first N hours"
    )


AUTO_ACTOR = "capplan-auto"


@dataclass(frozen=True)
class Approval:
    approved: bool
    actor: str
    max_workers: int | None = None
    apply_hours: float | None = None
    refused: str | None = None  # why a decision was refused (stale plan, cap), if it was
    ended: str | None = None    # why the wait ended without a decision (superseded, cancelled)


@dataclass(frozen=True)
class PolicyOutcome:
    """What the policy did with a new plan: ``execute`` it now, ``ask_person``, or neither
    (recorded, advisory, held); ``reason`` says which and why."""

    verdict: Verdict
    reason: str
    execute: bool = False
    ask_person: bool = False


@capplan_io_task(name="approve", task_run_name="approve-{policy.name}", retries=0)
def approve(policy: ScalingPolicy, plan_id: int, decision: Decision,
            summary: dict[str, Any], flow_run_id: str) -> PolicyOutcome:
    """Apply the policy to a new plan (:func:`~capplan_core.planning.approval_rules.
    policy_verdict`): approve it as capplan, record it, hold it, or leave it for a person
    (with its approval deadline on the store's clock). Audited; events say what happened."""
    logger = get_run_logger()
    store = plan_store()
    now = store.now()
    v = policy_verdict(policy, decision, now=now)
    if v.alert:
        store.audit("slo_alert", actor="capplan", plan_id=plan_id, queue=policy.queue,
                    details={"alert": v.alert, "confidence": decision.confidence,
                             "slo_achievable": decision.slo_achievable})
        emit_plan_event("slo-alert", summary, actor="capplan", reason=v.alert)
        logger.warning("plan %s: %s", plan_id, v.alert)
    if v.verdict in (Verdict.APPROVE, Verdict.APPROVE_CAPPED, Verdict.RECORD):
        details = {"max_workers": v.cap} if v.cap is not None else None
        store.transition(plan_id, PlanStatus.APPROVED, actor=AUTO_ACTOR, comment=v.reason,
                         details=details)
        if v.verdict == Verdict.RECORD:  # no step: nothing left to apply
            store.transition(plan_id, PlanStatus.APPLIED, actor="capplan", comment=v.reason)
        emit_plan_event("approved", summary, actor=AUTO_ACTOR, reason=v.reason)
        logger.info("plan %s %s", plan_id, v.reason)
        return PolicyOutcome(v.verdict, v.reason, execute=v.verdict != Verdict.RECORD)
    if v.verdict == Verdict.HOLD:
        store.transition(plan_id, PlanStatus.HELD, actor="capplan", comment=v.reason)
        emit_plan_event("held", summary, actor="capplan", reason=v.reason)
        logger.warning("plan %s %s", plan_id, v.reason)
        return PolicyOutcome(v.verdict, v.reason)
    if v.verdict == Verdict.ADVISORY:
        return PolicyOutcome(v.verdict, v.reason)
    deadline = now + timedelta(seconds=policy.approval.timeout_seconds)
    store.set_flow_run(plan_id, flow_run_id, approval_deadline=deadline)
    if policy.mode == Mode.AUTO:
        store.audit("auto_fallback_manual", actor="capplan", plan_id=plan_id,
                    queue=policy.queue, details={"reason": v.reason})
        logger.warning("plan %s %s", plan_id, v.reason)
    emit_plan_event("awaiting-approval", summary, actor="capplan", reason=v.reason)
    return PolicyOutcome(v.verdict, v.reason, ask_person=True)


@dataclass(frozen=True)
class Refusal:
    """A submission that was not accepted as a decision: the run keeps waiting."""

    reason: str


def approval_form(current_workers: int | None) -> type[ApprovalInput]:
    """The approval form of one plan: ``max_workers`` may not go below its current count.

    Prefect validates a resume's input against this schema (UI and API alike), so a cap the
    plan cannot take is refused there with the reason; :func:`record_approval` checks again.
    """
    floor = max(1, current_workers or 1)
    return create_model(
        "ApprovalInput", __base__=ApprovalInput,
        max_workers=(int | None, Field(
            None, ge=floor, description=f"optional: cap the plan's worker count lower than "
            f"planned; at least {floor} (the current count), never 0")),
    )


async def wait_for_approver(
    policy: ScalingPolicy, plan_id: int, summary: dict[str, Any], *, poll_interval_s: int = 10,
    timeout_s: float | None = None, attempt: int = 0, refused: str | None = None,
) -> ApprovalInput | None:
    """Pause (or suspend) the run until a person submits the form; None if none did in time.

    ``attempt`` > 0 after a refused submission: a new pause (its own input key) whose
    description starts with why the last one was refused. While paused, the wait is watched
    every ``poll_interval_s``: when the plan stops waiting (a newer plan superseded it, it
    expired, it was decided elsewhere) or the run is being cancelled, the pause ends at once
    and :class:`~tasks.approval_runs.WaitEnded` says why.
    """
    description = plan_markdown(summary, summary.get("details"))
    if refused:
        description = (f"**Previous submission refused:** {refused}\n\nStill waiting for an "
                       f"authorized decision.\n\n{description}")
    form = approval_form(summary.get("current_workers")).with_initial_data(
        description=description)
    key = f"approve-plan-{plan_id}" + (f"-{attempt}" if attempt else "")
    timeout = max(1, int(policy.approval.timeout_seconds if timeout_s is None else timeout_s))
    try:
        if policy.approval.suspend and current_deployment.id:
            return await asuspend_flow_run(wait_for_input=form, timeout=timeout, key=key)
        return await watched(apause_flow_run(
            wait_for_input=form, timeout=timeout, poll_interval=poll_interval_s, key=key),
            plan_id, poll_interval_s=poll_interval_s)
    except FlowPauseTimeout:
        return None


async def decide_by_person(
    policy: ScalingPolicy, plan_id: int, summary: dict[str, Any], requested_by: str, *,
    poll_interval_s: int = 10,
) -> Approval:
    """Wait for an authorized decision until the plan's approval deadline (store's clock).

    Each submission is authenticated (:func:`authenticate_decision`) before it is stored; a
    refused one is audited with its reason and the run pauses again, showing the reason. A
    wait that ends without a decision (superseded, cancelled) returns ``ended``.
    """
    store = plan_store()
    deadline = _approval_deadline(policy, summary, store.now())
    attempt, refused = 0, None
    while True:
        left_s = (deadline - store.now()).total_seconds()
        try:
            answer = None if left_s <= 0 else await wait_for_approver(
                policy, plan_id, summary, poll_interval_s=poll_interval_s, timeout_s=left_s,
                attempt=attempt, refused=refused)
        except WaitEnded as ended:
            return Approval(False, "capplan", ended=str(ended))
        if answer is None:
            return record_approval(policy, plan_id, None, summary)
        verdict = authenticate_decision(policy, plan_id, answer, requested_by)
        if verdict is None:
            return record_approval(policy, plan_id, answer, summary)
        attempt, refused = attempt + 1, verdict.reason


def _approval_deadline(policy: ScalingPolicy, summary: dict[str, Any],
                       now: datetime) -> datetime:
    stored = (summary.get("details") or {}).get("approval_deadline")
    if stored:
        return datetime.fromisoformat(stored)
    return now + timedelta(seconds=policy.approval.timeout_seconds)


@capplan_io_task(name="authenticate-decision",
                 task_run_name="authenticate-decision-{policy.name}", retries=0)
def authenticate_decision(policy: ScalingPolicy, plan_id: int, answer: ApprovalInput,
                          requested_by: str) -> Refusal | None:
    """None when the submission is an authorized approver's own decision; else the refusal
    (audited as ``decision_refused``). Checked before anything is stored.

    The approver must be listed in the plan's policy version (``approval.approvers``), not be
    a requester when ``approval.require_distinct_requester`` (who asked for the cycle, who
    applied that policy version), and the approval code must be the HMAC of this decision
    under their own key (resolved from its secret reference, never logged).
    """
    logger = get_run_logger()
    store = plan_store()
    plan = store.get_plan(plan_id)
    version = plan.details.get("policy_version")
    applied_by = store.policy_version(policy.name, int(version)).applied_by if version else ""
    reason = authorization_problem(policy, answer.approver, [requested_by, applied_by])
    if reason is None:
        try:
            key = resolve_secret(key_ref(policy, answer.approver))
        except SecretUnavailable as err:
            reason = f"approver {answer.approver!r} has no key: {err}"
        else:
            reason = code_problem(DecisionClaim(
                plan_id=plan_id, decision=answer.decision, approver=answer.approver,
                code=answer.approval_code, max_workers=answer.max_workers,
                apply_hours=answer.apply_hours), key.get_secret_value())
    if reason is None:
        return None
    store.audit("decision_refused", actor=answer.approver, plan_id=plan_id, queue=policy.queue,
                details={"decision": answer.decision, "reason": reason,
                         "authenticated": False})
    logger.warning("plan %s: %s by %r refused: %s", plan_id, answer.decision, answer.approver,
                   reason)
    return Refusal(reason)


@capplan_io_task(name="record-approval", task_run_name="record-approval-{policy.name}",
                 retries=0)
def record_approval(policy: ScalingPolicy, plan_id: int, answer: ApprovalInput | None,
                    summary: dict[str, Any]) -> Approval:
    """Store the person's decision (audited, once), or expire the plan when none came."""
    logger = get_run_logger()
    store = plan_store()
    if answer is None:
        try:
            store.transition(plan_id, PlanStatus.EXPIRED, actor="capplan",
                             comment=f"no decision within {policy.approval.timeout_seconds:.0f} s")
        except DecisionConflict as err:  # superseded by a newer plan while it waited
            logger.warning("plan %s not waiting any more: %s", plan_id, err)
            return Approval(False, "capplan", refused=str(err))
        emit_plan_event("expired", summary, actor="capplan")
        logger.warning("plan %s expired waiting for approval", plan_id)
        return Approval(False, "capplan")
    status = PlanStatus.APPROVED if answer.decision == "approve" else PlanStatus.REJECTED
    try:
        store.transition(plan_id, status, actor=answer.approver, comment=answer.comment,
                         details={"max_workers": answer.max_workers,
                                  "apply_hours": answer.apply_hours,
                                  "authenticated": "approval-code"})
    except (DecisionConflict, CapRefused) as err:
        # a stale plan (a newer one exists), a refused cap, or already decided: nothing runs
        store.audit("decision_refused", actor=answer.approver, plan_id=plan_id,
                    queue=policy.queue, details={"decision": answer.decision,
                                                 "reason": str(err)})
        logger.warning("plan %s: %s refused: %s", plan_id, answer.decision, err)
        return Approval(False, answer.approver, refused=str(err))
    emit_plan_event(status.value, summary, actor=answer.approver)
    logger.info("plan %s %s by %s", plan_id, status.value, answer.approver)
    return Approval(status == PlanStatus.APPROVED, answer.approver, answer.max_workers,
                    answer.apply_hours)
