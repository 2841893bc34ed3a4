"""capacity-plan: collect → clean → forecast → plan → simulate → decide → approve → execute.

Scheduled, it plans from the store (``queue_metrics``, written by collect-metrics) at the wall
clock; a metrics file (``metrics_path``) is for offline planning and replays.

The parent run fans out one child run (``plan-queue``) per policy, concurrently, so a pause
waiting for one queue's approval never holds up another queue's plan.
"""


import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from pydantic import Field
from sqlalchemy.exc import DBAPIError

from capplan_app.bootstrap import policy_path as resolve_policy_path
from capplan_core.policy import PolicyError, ScalingPolicy, load_policies
from capplan_core.policy_select import select_policies
from capplan_core.utc import utc_datetime
from flows.plan_queue import plan_queue
from tasks.stages import expire_undecided_plans, file_data_end, load_policies_task


class StoreUnavailable(RuntimeError):
    """The plan store could not be read or written during a cycle."""


ApprovalMode = Literal["policy", "none"]
ChildRuns = Literal["inline", "deployment"]
PLAN_QUEUE_DEPLOYMENT = "plan-queue/plan-queue"


def plan_time(metrics_path: str | None, as_of: datetime | None) -> datetime:
    """"Now" of the cycle: ``as_of`` (a replay), else the metrics file's end (offline), else
    the wall clock (planning from the store)."""
    if as_of is not None:
        return utc_datetime(as_of)
    if metrics_path:
        return utc_datetime(file_data_end(metrics_path))
    return datetime.now(UTC)


def _run_name() -> str:
    params = flow_run.parameters
    names = params.get("policies")
    if not names:
        try:
            names = [p.name for p in load_policies(resolve_policy_path(params.get("policy_path")))]
        except (PolicyError, ValueError):
            names = ["invalid-policy-file"]
    return "plan " + ",".join(names)


@flow(name="capacity-plan", flow_run_name=_run_name, log_prints=True)
async def capacity_plan(
    metrics_path: Annotated[str | None, Field(
        description="metrics file (CSV/Parquet) for offline planning; empty: plan from the "
                    "stored history (queue_metrics) at the wall clock")] = None,
    policy_path: Annotated[str | None, Field(
        description="policy YAML file; empty: CAPPLAN_POLICY_PATH or the Prefect Variable "
                    "'capplan-policy-path'")] = None,
    policies: Annotated[list[str] | None, Field(description="subset of policy names")] = None,
    as_of: Annotated[datetime | None, Field(
        description="plan as of (a replay); default: now, or the metrics file's end")] = None,
    approval: Annotated[ApprovalMode, Field(
        description="'policy': follow each policy's mode; 'none': plan only")] = "policy",
    approval_poll_s: Annotated[int, Field(ge=1, le=300)] = 10,
    child_runs: Annotated[ChildRuns, Field(
        description="'inline': child runs in this process; 'deployment': each child is a "
                    "run of the plan-queue deployment (needed for approval.suspend)")] = "inline",
) -> list[dict[str, Any]]:
    logger = get_run_logger()
    all_policies = load_policies_task(resolve_policy_path(policy_path))
    selected = select_policies(all_policies, names=policies)
    now = plan_time(metrics_path, as_of)
    expired = expire_undecided_plans()
    if expired:
        logger.warning("expired undecided plans %s", expired)
    logger.info("planning %d queue(s) as of %s", len(selected), now.isoformat())
    if child_runs == "deployment":
        return [await _start_child(p, metrics_path, now, approval, approval_poll_s)
                for p in selected]
    outcomes = await asyncio.gather(
        *(plan_queue(policy=p, metrics_path=metrics_path, as_of=now, approval=approval,
                     approval_poll_s=approval_poll_s) for p in selected),
        return_exceptions=True,
    )
    down = [out for out in outcomes if isinstance(out, DBAPIError)]
    if down:  # the store is down (after its tasks' retries): fail the cycle, plan nothing
        raise StoreUnavailable(f"the plan store failed during the cycle: {down[0]}") from down[0]
    results: list[dict[str, Any]] = []
    for p, out in zip(selected, outcomes, strict=True):
        if isinstance(out, BaseException):
            logger.error("queue %s failed: %s", p.queue, out)
            results.append({"queue": p.queue, "policy": p.name, "mode": p.mode.value,
                            "status": "failed", "error": f"{type(out).__name__}: {out}"})
        else:
            results.append(out)
    return results


async def _start_child(policy: ScalingPolicy, metrics_path: str | None, as_of: datetime,
                       approval: str, approval_poll_s: int) -> dict[str, Any]:
    """Start the policy's child as a run of the plan-queue deployment (not waited for)."""
    from prefect.deployments import arun_deployment

    run = await arun_deployment(
        PLAN_QUEUE_DEPLOYMENT, timeout=0, flow_run_name=f"plan-{policy.name}",
        parameters={"policy": policy.model_dump(mode="json"), "metrics_path": metrics_path,
                    "as_of": as_of.isoformat(), "approval": approval,
                    "approval_poll_s": approval_poll_s})
    return {"queue": policy.queue, "policy": policy.name, "mode": policy.mode.value,
            "status": "started", "flow_run_id": str(run.id)}
