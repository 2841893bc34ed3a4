"""capacity-plan: collect → clean → forecast → plan → simulate → decide → approve → execute.

Scheduled, it plans the stored policies (each at its current version, ``capplan policies
apply``) from the store (``queue_metrics``, written by collect-metrics) at the wall clock; a
metrics file (``metrics_path``) is for offline planning and replays. A run never carries its
own policy: a policy file (``policy_path``) is only ever a preview that writes nothing.

Queues that need no approval in this run (advisory, or ``approval='none'``) are planned in
chunks: ``plan-chunk`` task runs mapped over the task runner, each planning, storing and
publishing a chunk of queues, with a progress artifact that advances as chunks finish. A queue
that may pause for a person (manual, or auto that may fall back to manual) gets its own child
run (``plan-queue``), concurrently, so a pause never holds up another queue's plan
(docs/scale.md).
"""

import asyncio
from datetime import datetime
from typing import Annotated, Any, Literal

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from pydantic import Field
from sqlalchemy.exc import DBAPIError

from capplan_app.settings import get_settings
from capplan_app.task_runners import SettingsTaskRunner
from capplan_core.planning.queue_result import QueueResult
from capplan_core.policy import Mode, PolicyError, ScalingPolicy, load_policies
from capplan_core.policy_select import select_policies
from flows.plan_queue import plan_queue
from tasks.batch import plan_in_chunks
from tasks.restore import restore_check
from tasks.stages import (
    PreviewOnly,
    expire_undecided_plans,
    load_policies_task,
    plan_time,
    read_policies,
)


class StoreUnavailable(RuntimeError):
    """The plan store could not be read or written during a cycle."""


ApprovalMode = Literal["policy", "none"]
ChildRuns = Literal["inline", "deployment"]
PLAN_QUEUE_DEPLOYMENT = "plan-queue/plan-queue"
FORECAST_PICTURES_UP_TO = 50  # a larger batched cycle publishes no forecast table + picture


def _run_name() -> str:
    params = flow_run.parameters
    names = params.get("policies")
    if not names and params.get("policy_path"):
        try:
            names = [p.name for p in load_policies(params["policy_path"])]
        except (PolicyError, ValueError):
            names = ["invalid-policy-file"]
    return "plan " + (_listed(names) if names else "all enabled policies")


RUN_NAME_LIMIT = 200  # characters of policy names: a name is an indexed column in Prefect's
# database, and PostgreSQL refuses index rows over ~2.7 kB (1,000 names are ~6 kB)


def _listed(names: list[str]) -> str:
    text = ",".join(names)
    if len(text) <= RUN_NAME_LIMIT:
        return text
    shown = text[:RUN_NAME_LIMIT].rsplit(",", 1)[0]
    return f"{shown},… ({len(names)} policies)"


# plan-chunk task runs on CAPPLAN_TASK_RUNNER (threads, processes or Dask), read when a run
# starts: the same for a deployed run and `capplan plan`
@flow(
    name="capacity-plan", flow_run_name=_run_name, log_prints=True, task_runner=SettingsTaskRunner()
)
async def capacity_plan(
    policies: Annotated[
        list[str] | None,
        Field(
            description="policy names (stored: capplan policies apply FILE); empty: every "
            "enabled stored policy"
        ),
    ] = None,
    metrics_path: Annotated[
        str | None,
        Field(
            description="metrics file (CSV/Parquet) for offline planning; empty: plan from the "
            "stored history (queue_metrics) at the wall clock"
        ),
    ] = None,
    as_of: Annotated[
        datetime | None,
        Field(
            description="plan as of this time: previews only (save=false; a run that saves "
            "plans plans at the wall clock); default: now, or for a preview of a "
            "metrics file its end"
        ),
    ] = None,
    approval: Annotated[
        ApprovalMode, Field(description="'policy': follow each policy's mode; 'none': plan only")
    ] = "policy",
    approval_poll_s: Annotated[int, Field(ge=1, le=300)] = 10,
    child_runs: Annotated[
        ChildRuns,
        Field(
            description="'inline': child runs in this process; 'deployment': each child is a "
            "run of the plan-queue deployment (needed for approval.suspend)"
        ),
    ] = "inline",
    save: Annotated[
        bool, Field(description="store the plans; false: a preview that writes nothing")
    ] = True,
    requested_by: Annotated[
        str,
        Field(
            min_length=1,
            max_length=200,
            description="who asked for this cycle (audited; an "
            "approver must differ when the policy requires a distinct requester)",
        ),
    ] = "schedule",
    policy_path: Annotated[
        str | None,
        Field(
            description="preview the policies of this YAML file instead of the stored ones; "
            "needs save=false and approval='none'"
        ),
    ] = None,
) -> list[dict[str, Any]]:
    logger = get_run_logger()
    now = plan_time(metrics_path, as_of, save=save)  # refuses as_of when saving
    if policy_path and (save or approval != "none"):
        raise PreviewOnly(
            f"policy_path: {policy_path!r} is a preview: it needs save=false "
            f"and approval='none' (got save={save}, approval={approval!r}); "
            "store it with `capplan policies apply FILE` to plan it for real"
        )
    if policy_path:
        previewed = load_policies_task(policy_path)
        selected = select_policies(previewed, names=policies)
        versions: dict[str, int | None] = {p.name: None for p in selected}
    else:
        stored = read_policies()
        selected = select_policies([v.policy for v in stored], names=policies)
        versions = {v.name: v.version for v in stored}
    if save:
        restore_check("capacity-plan")  # a restored store is settled before planning
        expired = expire_undecided_plans()
        if expired:
            logger.warning("expired undecided plans %s", expired)
    logger.info("planning %d queue(s) as of %s", len(selected), now.isoformat())
    if child_runs == "deployment":
        if not save or policy_path:
            raise PreviewOnly("child_runs='deployment' plans stored policies and saves them")
        return [
            await _start_child(
                p, versions[p.name], metrics_path, now, approval, approval_poll_s, requested_by
            )
            for p in selected
        ]
    # queues that may pause for a person keep their own child run; the rest are batched
    batched = [p for p in selected if approval == "none" or p.mode == Mode.ADVISORY]
    children = [p for p in selected if p not in batched]
    settings = get_settings()
    in_chunks = (
        plan_in_chunks(
            batched,
            metrics_path,
            now,
            chunk_size=settings.plan_chunk_size,
            concurrency=settings.plan_concurrency,
            flow_run_id=str(flow_run.id),
            versions=versions,
            save=save,
            approval=approval,
            forecast_artifacts=len(batched) <= FORECAST_PICTURES_UP_TO,
        )
        if batched
        else []
    )
    outcomes = await asyncio.gather(
        *(
            plan_queue(
                policy=p.name,
                policy_version=versions[p.name],
                metrics_path=metrics_path,
                as_of=None if save else now,
                approval=approval,
                approval_poll_s=approval_poll_s,
                save=save,
                requested_by=requested_by,
                preview_policy=p if policy_path else None,
            )
            for p in children
        ),
        return_exceptions=True,
    )
    by_queue = dict(
        zip(
            [p.queue for p in batched],
            [r.pop("exception", None) or r for r in in_chunks],
            strict=True,
        )
    )
    by_queue.update(zip([p.queue for p in children], outcomes, strict=True))
    down = [out for out in by_queue.values() if isinstance(out, DBAPIError)]
    if down:  # the store is down (after its tasks' retries): fail the cycle, plan nothing
        raise StoreUnavailable(f"the plan store failed during the cycle: {down[0]}") from down[0]
    results: list[dict[str, Any]] = []
    for p in selected:
        out = by_queue[p.queue]
        if isinstance(out, BaseException):
            logger.error("queue %s failed: %s", p.queue, out)
            results.append(
                QueueResult.failure(
                    queue=p.queue,
                    policy=p.name,
                    mode=p.mode.value,
                    error=f"{type(out).__name__}: {out}",
                ).to_json()
            )
        else:
            if out.get("status") == "failed":
                logger.error("queue %s failed: %s", p.queue, out.get("error"))
            results.append(out)
    return results


async def _start_child(
    policy: ScalingPolicy,
    version: int | None,
    metrics_path: str | None,
    as_of: datetime,
    approval: str,
    approval_poll_s: int,
    requested_by: str,
) -> dict[str, Any]:
    """Start the policy's child as a run of the plan-queue deployment (not waited for)."""
    from prefect.deployments import arun_deployment

    run = await arun_deployment(
        PLAN_QUEUE_DEPLOYMENT,
        timeout=0,
        flow_run_name=f"plan-{policy.name}",
        parameters={
            "policy": policy.name,
            "policy_version": version,
            "metrics_path": metrics_path,
            "approval": approval,
            "approval_poll_s": approval_poll_s,
            "requested_by": requested_by,
        },
    )
    return {
        "queue": policy.queue,
        "policy": policy.name,
        "policy_version": version,
        "mode": policy.mode.value,
        "status": "started",
        "flow_run_id": str(run.id),
    }
