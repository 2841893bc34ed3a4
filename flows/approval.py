"""The approval form a person fills on a paused plan run (Prefect UI or API)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from prefect import get_run_logger
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import apause_flow_run, asuspend_flow_run
from prefect.input import RunInput
from prefect.runtime import deployment as current_deployment
from pydantic import Field

from capplan_app.bootstrap import plan_store
from capplan_core.planning.approval_rules import auto_approval
from capplan_core.planning.decide import Decision
from capplan_core.planning.markdown import plan_markdown
from capplan_core.policy import Mode, ScalingPolicy
from capplan_core.store.models import PlanStatus
from tasks.events import emit_plan_event


class ApprovalInput(RunInput):
    """Approve or reject a capacity plan; the optional limits only ever narrow it."""

    decision: Literal["approve", "reject"] = Field(
        description="approve applies the plan; reject applies nothing"
    )
    approver: str = Field(min_length=1, max_length=200, description="who decides (audited)")
    comment: str = Field("", max_length=2000)
    max_workers: int | None = Field(
        None, ge=0, description="optional: cap the plan's worker count lower than planned"
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


async def approve(
    policy: ScalingPolicy,
    plan_id: int,
    decision: Decision | None,
    summary: dict[str, Any],
    *,
    flow_run_id: str,
    poll_interval_s: int = 10,
) -> Approval:
    """Approve by policy (auto) or wait for a person's decision (manual).

    Waiting pauses this run; with ``approval.suspend`` and a deployed run it suspends instead,
    releasing its infrastructure (the run restarts on resume, finds its plan, and continues
    here). ``decision`` is None on such a restart: the plan is already past auto approval.
    """
    logger = get_run_logger()
    store = plan_store()
    if decision is not None:
        deadline = datetime.now(UTC) + timedelta(seconds=policy.approval.timeout_seconds)
        store.set_flow_run(plan_id, flow_run_id, approval_deadline=deadline)
    if policy.mode == Mode.AUTO and decision is not None:
        ok, why = auto_approval(policy, decision, summary["current_workers"])
        if ok:
            store.transition(plan_id, PlanStatus.APPROVED, actor=AUTO_ACTOR, comment=why)
            emit_plan_event("approved", summary, actor=AUTO_ACTOR)
            logger.info("plan %s %s", plan_id, why)
            return Approval(True, AUTO_ACTOR)
        store.audit(
            "auto_fallback_manual",
            actor="capplan",
            plan_id=plan_id,
            queue=policy.queue,
            details={"reason": why},
        )
        logger.warning("plan %s falls back to manual approval: %s", plan_id, why)

    if decision is not None:
        emit_plan_event("awaiting-approval", summary, actor="capplan")
    form = ApprovalInput.with_initial_data(
        description=plan_markdown(summary, summary.get("details")), decision="approve"
    )
    key = f"approve-plan-{plan_id}"
    timeout_s = int(policy.approval.timeout_seconds)
    try:
        if policy.approval.suspend and current_deployment.id:
            answer = await asuspend_flow_run(wait_for_input=form, timeout=timeout_s, key=key)
        else:
            answer = await apause_flow_run(
                wait_for_input=form, timeout=timeout_s, poll_interval=poll_interval_s, key=key
            )
    except FlowPauseTimeout:
        store.transition(
            plan_id,
            PlanStatus.EXPIRED,
            actor="capplan",
            comment=f"no decision within {policy.approval.timeout_seconds:.0f} s",
        )
        emit_plan_event("expired", summary, actor="capplan")
        logger.warning("plan %s expired waiting for approval", plan_id)
        return Approval(False, "capplan")
    status = PlanStatus.APPROVED if answer.decision == "approve" else PlanStatus.REJECTED
    store.transition(
        plan_id,
        status,
        actor=answer.approver,
        comment=answer.comment,
        details={"max_workers": answer.max_workers, "apply_hours": answer.apply_hours},
    )
    emit_plan_event(status.value, summary, actor=answer.approver)
    logger.info("plan %s %s by %s", plan_id, status.value, answer.approver)
    return Approval(
        status == PlanStatus.APPROVED, answer.approver, answer.max_workers, answer.apply_hours
    )
