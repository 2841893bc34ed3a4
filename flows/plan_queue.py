"""plan-queue: the pipeline for one policy (a child run of capacity-plan)."""


from datetime import datetime
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from capplan_core.planning.decide import Decision
from capplan_core.policy import Mode, ScalingPolicy
from flows.approval import approve
from tasks.artifacts import publish_forecast, publish_plan, publish_quality
from tasks.execute import execute_plan
from tasks.stages import (
    clean_and_check,
    collect_file,
    forecast,
    plan_and_simulate,
    store_plan,
    store_skipped,
)
from tasks.summary import find_own_plan, summarize


@flow(name="plan-queue", flow_run_name="plan-{policy.name}", log_prints=True)
async def plan_queue(
    policy: ScalingPolicy,
    metrics_path: str,
    as_of: datetime,
    approval: Literal["policy", "none"] = "policy",
    approval_poll_s: int = 10,
) -> dict[str, Any]:
    logger = get_run_logger()
    resumed = find_own_plan(str(flow_run.id)) if approval == "policy" else None
    if resumed is not None:
        # a suspended run restarted after its approval: continue at the decision
        logger.info("resuming plan %s at its approval", resumed["id"])
        return await decide_and_execute(policy, resumed["id"], None, resumed, approval_poll_s)
    rows = collect_file(metrics_path, policy.queue)
    assessment = clean_and_check(rows, policy, now=as_of)
    publish_quality(assessment)
    if not assessment.plannable:
        reason = assessment.quality.reason or f"no usable metrics for queue {policy.queue!r}"
        logger.warning("queue %s not planned: %s", policy.queue, reason)
        plan_id = store_skipped(policy, reason, as_of, assessment.quality.as_dict())
        return summarize(plan_id)

    fc = forecast(assessment, policy)
    if isinstance(fc, str):
        logger.warning("queue %s not planned: %s", policy.queue, fc)
        return summarize(store_skipped(policy, fc, as_of, assessment.quality.as_dict()))
    publish_forecast(assessment, fc)
    decision, state = plan_and_simulate(policy, fc, assessment, as_of)
    plan_id = store_plan(policy, decision, state, fc, assessment, as_of)
    summary = summarize(plan_id)
    publish_plan(summary, summary.get("details", {}), summary.get("explanation", []))

    if approval == "none" or policy.mode == Mode.ADVISORY:
        logger.info("plan %s for %s is advisory here: nothing is executed", plan_id, policy.queue)
        return summarize(plan_id, note="advisory: never executed" if approval != "none"
                         else "plan only (approval='none')")
    return await decide_and_execute(policy, plan_id, decision, summary, approval_poll_s)


async def decide_and_execute(
    policy: ScalingPolicy, plan_id: int, decision: Decision | None, summary: dict[str, Any],
    approval_poll_s: int,
) -> dict[str, Any]:
    decided = await approve(policy, plan_id, decision, summary,
                            flow_run_id=str(flow_run.id), poll_interval_s=approval_poll_s)
    if decided.approved:
        execute_plan(plan_id, apply_hours=decided.apply_hours)
    return summarize(plan_id)
