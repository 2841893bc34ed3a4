"""approve-plan: one plan waits for a person here, so that no cycle ever waits for one.

Started by the planning cycle for a plan its policy leaves to a person
(tasks/approval_runs.py). The run pauses with the approval form (or suspends, with
``approval.suspend`` on a deployed run) until the plan's approval deadline; each submission is
authenticated, then stored; an approved plan is executed: steps due now are applied, later ones
become scheduled apply-step runs (and the apply-due sweeper backs them up).

The wait ends without a decision, and the run ends ``Cancelled`` with the reason in the UI,
when the plan stops waiting (a newer plan of its queue superseded it, or it expired) or when
the run is cancelled in Prefect (then the plan is marked ``cancelled``).
"""

from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect.states import Cancelled, State
from pydantic import Field

from tasks.approval_runs import leave_pause, mark_cancelled, on_approval_run_cancelled
from tasks.approve import decide_by_person
from tasks.execute import execute_plan
from tasks.summary import link_approval_run, plan_policy, read_plan


@flow(
    name="approve-plan",
    flow_run_name="approve-plan-{plan_id}",
    log_prints=True,
    on_cancellation=[on_approval_run_cancelled],
)
async def approve_plan(
    plan_id: Annotated[int, Field(ge=1, description="the plan waiting for a person")],
    requested_by: Annotated[
        str,
        Field(
            max_length=200,
            description="who asked for the cycle "
            "that made the plan (an approver must differ when "
            "the policy says so)",
        ),
    ] = "schedule",
    approval_poll_s: Annotated[int, Field(ge=1, le=300)] = 10,
) -> dict[str, Any] | State:
    logger = get_run_logger()
    summary = read_plan(plan_id)
    if summary["status"] != "proposed":
        logger.info("plan %s is %s: nothing to decide", plan_id, summary["status"])
        return read_plan(plan_id, note=f"not waiting: already {summary['status']}")
    policy = plan_policy(plan_id)
    link_approval_run(plan_id, str(flow_run.id))
    decided = await decide_by_person(
        policy, plan_id, summary, requested_by, poll_interval_s=approval_poll_s
    )
    if decided.ended is not None:
        logger.warning("plan %s: %s", plan_id, decided.ended)
        if "approval run was cancelled" in decided.ended:
            mark_cancelled(plan_id, decided.ended)
        leave_pause(flow_run.id)
        return Cancelled(message=decided.ended)
    if decided.approved:
        execute_plan(policy.name, plan_id, apply_hours=decided.apply_hours)
    return read_plan(plan_id)
