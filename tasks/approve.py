"""Approve stage: by policy (auto), or a person's decision on the approval form.

:func:`approve` (task) applies the policy; when a person must decide, the flow waits with
:func:`wait_for_approver` (a pause, or with ``approval.suspend`` on a deployed run a suspension
that releases its infrastructure; Prefect suspends flows, not tasks, so this runs in the flow)
and :func:`record_approval` (task) stores what came back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from prefect import get_run_logger
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import apause_flow_run, asuspend_flow_run
from prefect.input import RunInput
from prefect.runtime import deployment as current_deployment
from pydantic import Field, create_model

from capplan_app.bootstrap import plan_store
from capplan_core.planning.approval_rules import auto_approval
from capplan_core.planning.decide import Decision
from capplan_core.planning.markdown import plan_markdown
from capplan_core.planning.stored_plan import PlanStatus
from capplan_core.policy import Mode, ScalingPolicy
from capplan_core.store.errors import CapRefused, DecisionConflict
from tasks.common import capplan_io_task
from tasks.events import emit_plan_event


class ApprovalInput(RunInput):
    """Approve or reject a capacity plan; the optional limits only ever narrow it."""

    decision: Literal["approve", "reject"] = Field(
        description="approve applies the plan; reject applies nothing"
    )
    approver: str = Field(min_length=1, max_length=200, description="who decides (audited)")
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


@capplan_io_task(name="approve", task_run_name="approve-{policy.name}", retries=0)
def approve(
    policy: ScalingPolicy, plan_id: int, decision: Decision | None, summary: dict[str, Any],
    flow_run_id: str,
) -> Approval | None:
    """Approve by policy (auto), or return None: a person must decide.

    ``decision`` is None when a suspended run restarts after its approval: the plan is
    already past this step, so nothing is recorded again.
    """
    logger = get_run_logger()
    if decision is None:
        return None
    store = plan_store()
    deadline = datetime.now(UTC) + timedelta(seconds=policy.approval.timeout_seconds)
    store.set_flow_run(plan_id, flow_run_id, approval_deadline=deadline)
    if policy.mode == Mode.AUTO:
        ok, why = auto_approval(policy, decision, summary["current_workers"])
        if ok:
            store.transition(plan_id, PlanStatus.APPROVED, actor=AUTO_ACTOR, comment=why)
            emit_plan_event("approved", summary, actor=AUTO_ACTOR)
            logger.info("plan %s %s", plan_id, why)
            return Approval(True, AUTO_ACTOR)
        store.audit("auto_fallback_manual", actor="capplan", plan_id=plan_id,
                    queue=policy.queue, details={"reason": why})
        logger.warning("plan %s falls back to manual approval: %s", plan_id, why)
    emit_plan_event("awaiting-approval", summary, actor="capplan")
    return None


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
) -> ApprovalInput | None:
    """Pause (or suspend) the run until a person submits the form; None if none did in time."""
    form = approval_form(summary.get("current_workers")).with_initial_data(
        description=plan_markdown(summary, summary.get("details")), decision="approve"
    )
    key = f"approve-plan-{plan_id}"
    timeout_s = int(policy.approval.timeout_seconds)
    try:
        if policy.approval.suspend and current_deployment.id:
            return await asuspend_flow_run(wait_for_input=form, timeout=timeout_s, key=key)
        return await apause_flow_run(
            wait_for_input=form, timeout=timeout_s, poll_interval=poll_interval_s, key=key
        )
    except FlowPauseTimeout:
        return None


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
                                  "apply_hours": answer.apply_hours})
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
