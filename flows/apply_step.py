"""apply-step: apply one scaling step of an approved plan at its time, after re-checking it.

Scheduled by the execute stage of capacity-plan (one run per later step, visible in the
Prefect UI). A deferral (cooldown, an earlier step still open, a busy target, transient
cluster faults) reschedules the step; drift asks for a re-plan instead of a blind overwrite;
a permanent fault (forbidden, not found, invalid) fails the step and the plan, emits
``capplan.plan.failed`` and fails this run with the reason.
"""

from datetime import timedelta
from typing import Annotated, Any

from prefect import flow, get_run_logger
from pydantic import Field

from capplan_app.bootstrap import plan_store
from capplan_core.execution.executor import DEFAULT_LEASE_S
from capplan_core.planning.records import plan_summary
from tasks.events import emit_plan_event
from tasks.execute import (
    LeaseSeconds,
    apply_one_step,
    policies_to_replan,
    request_replan,
    schedule_apply_step,
)
from tasks.restore import restore_check


@flow(name="apply-step", flow_run_name="apply-plan-{plan_id}-step-{step_id}", log_prints=True)
def apply_step_flow(
    plan_id: Annotated[int, Field(ge=1)],
    step_id: Annotated[int, Field(ge=1)],
    lease_s: LeaseSeconds = DEFAULT_LEASE_S,
) -> dict[str, Any]:
    logger = get_run_logger()
    store = plan_store()
    restore_check("apply-step")  # a restored store is settled before the step is applied
    result = apply_one_step(plan_id, step_id, lease_s=lease_s)
    if result.outcome == "failed":  # the task emitted capplan.plan.failed
        raise RuntimeError(
            f"plan {plan_id} step {step_id} failed: {result.reason}; the plan is marked failed"
        )
    plan = store.get_plan(plan_id)
    summary = plan_summary(plan)
    out: dict[str, Any] = {
        "plan_id": plan_id,
        "step_id": step_id,
        "outcome": result.outcome,
        "reason": result.reason,
    }
    if result.outcome == "deferred" and result.retry_after_s is not None:
        at = store.now() + timedelta(seconds=result.retry_after_s + 1)
        out["rescheduled_run"] = schedule_apply_step(
            plan_id, step_id, at, attempt=f"at-{int(at.timestamp())}"
        )
    elif policies_to_replan([{"plan_id": plan_id, **result.__dict__}]):
        # its window passed before this run got it (a late approval handed over by the
        # planning pool, a run that waited too long): re-plan the queue now, as apply-due does
        out["replan_run"] = request_replan(plan.details["policy"], f"plan {plan_id}'s step expired")
        logger.warning("plan %s step %s expired: re-plan %s", plan_id, step_id, out["replan_run"])
    elif result.outcome == "refused" and result.details.get("guard") == "refuse-drift":
        out["replan_run"] = request_replan(plan.details["policy"], "drift")
        logger.warning(
            "drift on %s: %s; re-plan requested (%s)", plan.queue, result.reason, out["replan_run"]
        )
    elif result.outcome in ("applied", "noop") and plan.status == "applied":
        emit_plan_event("applied", summary, actor="capplan")
    logger.info("plan %s step %s: %s — %s", plan_id, step_id, result.outcome, result.reason)
    return out
