"""Approve stage, the Prefect side: the approval form, the pause, thin tasks and the events.

The rules and the use cases are the domain's (:mod:`capplan_core.approval`): :func:`approve`
(task) applies the policy (``service.apply_policy``); when a person must decide, the plan's
approve-plan run waits in
:func:`decide_by_person`: :func:`wait_for_approver` (a pause, or with ``approval.suspend`` on a
deployed run a suspension that releases its infrastructure; Prefect suspends flows, not tasks,
so this runs in the flow), :func:`authenticate_decision` (task: a listed approver's own code,
else refused and the run waits again; ``service.authenticate``) and :func:`record_approval`
(task, ``service.record_decision``) stores the decision.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any, Literal

from prefect import get_run_logger
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import apause_flow_run, asuspend_flow_run
from prefect.input import RunInput
from prefect.runtime import deployment as current_deployment
from pydantic import Field, create_model

from capplan_app.bootstrap import plan_store
from capplan_app.secrets import approver_key
from capplan_core.approval.auth import CODE_CHARS
from capplan_core.approval.service import (
    AUTO_ACTOR,
    Approval,
    PolicyOutcome,
    Refusal,
    Submission,
    apply_policy,
    authenticate,
    record_decision,
)
from capplan_core.approval.signed import MAX_PROOF_CHARS, PROOF_PATTERN
from capplan_core.planning.decide import Decision
from capplan_core.planning.markdown import plan_markdown
from capplan_core.policy import APPROVER_NAME, ScalingPolicy
from tasks.approval_runs import PAUSE_AGAIN, WaitEnded, api_outage, outlast_api_outage, watched
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
    approver: str = Field(
        min_length=1,
        max_length=63,
        pattern=APPROVER_NAME,
        description="who decides: a name in the policy's approval.approvers",
    )
    approval_code: str = Field(
        min_length=CODE_CHARS,
        max_length=MAX_PROOF_CHARS,
        pattern=PROOF_PATTERN,
        description="your signed decision, from `capplan approvals sign PLAN --decision "
        "approve|reject` (binds this decision and these limits on this plan in this store), "
        "or, where the policy takes codes, `capplan approvals code`",
    )
    comment: str = Field("", max_length=2000)
    max_workers: int | None = Field(
        None,
        ge=1,
        description="optional: cap the plan's worker count lower than planned "
        "(never below the current count, never 0)",
    )
    apply_hours: float | None = Field(
        None, gt=0, le=24 * 7, description="optional: apply only the steps in the first N hours"
    )


@capplan_io_task(name="approve", task_run_name="approve-{policy.name}", retries=0)
def approve(
    policy: ScalingPolicy,
    plan_id: int,
    decision: Decision,
    summary: dict[str, Any],
    flow_run_id: str,
) -> PolicyOutcome:
    """Apply the policy to a new plan (:func:`capplan_core.approval.service.apply_policy`):
    recorded, approved as capplan, held, or left for a person; the events say which."""
    logger = get_run_logger()
    out = apply_policy(plan_store(), policy, plan_id, decision, flow_run_id)
    for what, reason in out.events:
        emit_plan_event(
            what, summary, actor=AUTO_ACTOR if what == "approved" else "capplan", reason=reason
        )
    if out.alert:
        logger.warning("plan %s: %s", plan_id, out.alert)
    (logger.info if out.execute else logger.warning)("plan %s %s", plan_id, out.reason)
    return out


def approval_form(current_workers: int | None) -> type[ApprovalInput]:
    """The approval form of one plan: ``max_workers`` may not go below its current count.

    Prefect validates a resume's input against this schema (UI and API alike), so a cap the
    plan cannot take is refused there with the reason; :func:`record_approval` checks again.
    """
    floor = max(1, current_workers or 1)
    return create_model(
        "ApprovalInput",
        __base__=ApprovalInput,
        max_workers=(
            int | None,
            Field(
                None,
                ge=floor,
                description=f"optional: cap the plan's worker count lower than "
                f"planned; at least {floor} (the current count), never 0",
            ),
        ),
    )


async def wait_for_approver(
    policy: ScalingPolicy,
    plan_id: int,
    summary: dict[str, Any],
    *,
    poll_interval_s: int = 10,
    timeout_s: float | None = None,
    attempt: int = 0,
    refused: str | None = None,
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
        description = (
            f"**Previous submission refused:** {refused}\n\nStill waiting for an "
            f"authorized decision.\n\n{description}"
        )
    form = approval_form(summary.get("current_workers")).with_initial_data(description=description)
    key = f"approve-plan-{plan_id}" + (f"-{attempt}" if attempt else "")
    timeout = max(1, int(policy.approval.timeout_seconds if timeout_s is None else timeout_s))
    try:
        if policy.approval.suspend and current_deployment.id:
            return await asuspend_flow_run(wait_for_input=form, timeout=timeout, key=key)
        return await _paused(form, key, plan_id, timeout, poll_interval_s)
    except FlowPauseTimeout:
        return None


async def _paused(
    form: Any, key: str, plan_id: int, timeout_s: int, poll_interval_s: int
) -> ApprovalInput:
    """Prefect's pause, watched, outlasting an outage of Prefect's API: its own poll loop
    dies on the first 5xx or refused connection (its database down or being restored), and
    without this the plan would stay proposed with nobody waiting on its form."""
    loop = asyncio.get_running_loop()
    deadline_s = loop.time() + timeout_s

    def pause() -> Any:  # Prefect's pause, until the deadline (the same form and key)
        left_s = max(1, int(deadline_s - loop.time()))
        return apause_flow_run(
            wait_for_input=form, timeout=left_s, poll_interval=poll_interval_s, key=key
        )

    waiting = pause()
    while True:
        try:
            answer = await watched(waiting, plan_id, poll_interval_s=poll_interval_s)
        except Exception as err:
            if not api_outage(err):
                raise
            get_run_logger().warning(
                "plan %s: Prefect's API failed while the run waits for approval (%s): "
                "waiting on until it answers",
                plan_id,
                type(err).__name__,
            )
            answer = await watched(
                outlast_api_outage(form, key, deadline_s, poll_interval_s=poll_interval_s),
                plan_id,
                poll_interval_s=poll_interval_s,
            )
        if answer is not PAUSE_AGAIN:
            return answer
        get_run_logger().warning(
            "plan %s: the restored Prefect database had not seen the pause: pausing again", plan_id
        )
        waiting = pause()


async def decide_by_person(
    policy: ScalingPolicy,
    plan_id: int,
    summary: dict[str, Any],
    requested_by: str,
    *,
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
            answer = (
                None
                if left_s <= 0
                else await wait_for_approver(
                    policy,
                    plan_id,
                    summary,
                    poll_interval_s=poll_interval_s,
                    timeout_s=left_s,
                    attempt=attempt,
                    refused=refused,
                )
            )
        except WaitEnded as ended:
            return Approval(False, "capplan", ended=str(ended))
        if answer is None:
            return record_approval(policy, plan_id, None, summary)
        verdict = authenticate_decision(policy, plan_id, answer, requested_by)
        if verdict is None:
            return record_approval(policy, plan_id, answer, summary)
        attempt, refused = attempt + 1, verdict.reason


def _approval_deadline(policy: ScalingPolicy, summary: dict[str, Any], now: datetime) -> datetime:
    stored = (summary.get("details") or {}).get("approval_deadline")
    if stored:
        return datetime.fromisoformat(stored)
    return now + timedelta(seconds=policy.approval.timeout_seconds)


@capplan_io_task(
    name="authenticate-decision", task_run_name="authenticate-decision-{policy.name}", retries=0
)
def authenticate_decision(
    policy: ScalingPolicy, plan_id: int, answer: ApprovalInput, requested_by: str
) -> Refusal | None:
    """None when the submission is an authorized approver's own decision; else the refusal,
    audited (:func:`capplan_core.approval.service.authenticate`; the key is resolved from its
    secret reference and never logged)."""
    refusal = authenticate(
        plan_store(),
        policy,
        plan_id,
        submission(answer),
        requested_by,
        approver_key=lambda name: approver_key(policy, name),
    )
    if refusal is not None:
        get_run_logger().warning(
            "plan %s: %s by %r refused: %s",
            plan_id,
            answer.decision,
            answer.approver,
            refusal.reason,
        )
    return refusal


def submission(answer: ApprovalInput) -> Submission:
    """The form's answer as the approval service takes it."""
    return Submission(
        decision=answer.decision,
        approver=answer.approver,
        code=answer.approval_code,
        comment=answer.comment,
        max_workers=answer.max_workers,
        apply_hours=answer.apply_hours,
    )


@capplan_io_task(name="record-approval", task_run_name="record-approval-{policy.name}", retries=0)
def record_approval(
    policy: ScalingPolicy, plan_id: int, answer: ApprovalInput | None, summary: dict[str, Any]
) -> Approval:
    """Store the person's decision (audited, once), or expire the plan when none came
    (:func:`capplan_core.approval.service.record_decision`)."""
    logger = get_run_logger()
    out = record_decision(
        plan_store(), policy, plan_id, None if answer is None else submission(answer)
    )
    if out.event is not None:
        emit_plan_event(out.event, summary, actor=out.actor)
        logger.info("plan %s %s by %s", plan_id, out.event, out.actor)
    elif out.refused is not None:
        logger.warning("plan %s: decision refused: %s", plan_id, out.refused)
    return out
