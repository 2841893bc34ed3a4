"""plan-queue: the pipeline for one policy (a child run of capacity-plan).

collect (the store's history, or a metrics file offline) → clean → forecast → pool state
(the scaler's live count) → plan → simulate → decide (re-plan until confident) → store →
approve → execute. Each stage is a task in ``tasks/``; its logic is the core function it wraps.
"""


from datetime import datetime
from typing import Any, Literal, cast

import pandas as pd
from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from capplan_core.metrics.history import no_metrics_reason
from capplan_core.planning.decide import Decision, first_attempt
from capplan_core.policy import Mode, ScalingPolicy
from tasks.approve import approve, record_approval, wait_for_approver
from tasks.artifacts import publish_forecast, publish_plan, publish_quality
from tasks.execute import execute_plan
from tasks.planning import decide, plan, read_pool_state, simulate
from tasks.stages import clean, collect, forecast, store_plan, store_skipped
from tasks.summary import find_own_plan, read_plan


@flow(name="plan-queue", flow_run_name="plan-{policy.name}", log_prints=True)
async def plan_queue(
    policy: ScalingPolicy,
    metrics_path: str | None,
    as_of: datetime,
    approval: Literal["policy", "none"] = "policy",
    approval_poll_s: int = 10,
) -> dict[str, Any]:
    logger = get_run_logger()
    resumed = find_own_plan(str(flow_run.id)) if approval == "policy" else None
    if resumed is not None:
        # a suspended run restarted after its approval: continue at the approval
        logger.info("resuming plan %s at its approval", resumed["id"])
        return await approve_and_execute(policy, resumed["id"], None, resumed, approval_poll_s)
    rows: pd.DataFrame = cast(pd.DataFrame, collect(metrics_path, policy, now=as_of))
    if rows.empty and not metrics_path:  # planning from the store, nothing collected
        reason = no_metrics_reason(policy, as_of)
        logger.warning("queue %s not planned: %s", policy.queue, reason)
        return read_plan(store_skipped(policy, reason, as_of, None))
    assessment = clean(rows, policy, now=as_of)
    publish_quality(assessment)
    if not assessment.plannable:
        reason = assessment.quality.reason or f"no usable metrics for queue {policy.queue!r}"
        logger.warning("queue %s not planned: %s", policy.queue, reason)
        return read_plan(store_skipped(policy, reason, as_of, assessment.quality.as_dict()))

    fc = forecast(assessment, policy)
    if isinstance(fc, str):
        logger.warning("queue %s not planned: %s", policy.queue, fc)
        return read_plan(store_skipped(policy, fc, as_of, assessment.quality.as_dict()))
    publish_forecast(assessment, fc)

    # planning live (from the store) starts from the scaler's count, not the measured one
    state = read_pool_state(assessment, policy, live=not metrics_path)
    attempt = first_attempt(fc)
    for _ in range(policy.scaling.max_replans + 1):
        proposal = plan(policy, fc, state, attempt, as_of, assessment)
        simulation = simulate(policy, fc, state, proposal, attempt)
        judgement = decide(policy, attempt, proposal, simulation)
        if judgement.next_attempt is None:
            break
        attempt = judgement.next_attempt
    decision = judgement.decision

    plan_id = store_plan(policy, decision, state, fc, assessment, as_of)
    summary = read_plan(plan_id)
    publish_plan(summary, summary.get("details", {}), summary.get("explanation", []))
    if approval == "none" or policy.mode == Mode.ADVISORY:
        logger.info("plan %s for %s is advisory here: nothing is executed", plan_id, policy.queue)
        return read_plan(plan_id, note="advisory: never executed" if approval != "none"
                         else "plan only (approval='none')")
    return await approve_and_execute(policy, plan_id, decision, summary, approval_poll_s)


async def approve_and_execute(
    policy: ScalingPolicy, plan_id: int, decision: Decision | None, summary: dict[str, Any],
    approval_poll_s: int,
) -> dict[str, Any]:
    """Approve by policy or wait for a person; execute what was approved."""
    approved = approve(policy, plan_id, decision, summary, str(flow_run.id))
    if approved is None:
        answer = await wait_for_approver(policy, plan_id, summary,
                                         poll_interval_s=approval_poll_s)
        approved = record_approval(policy, plan_id, answer, summary)
    if approved.approved:
        execute_plan(policy.name, plan_id, apply_hours=approved.apply_hours)
    return read_plan(plan_id)
