"""Read a stored plan back as the JSON users see (plus its details for artifacts)."""

from __future__ import annotations

from typing import Any

from capplan_app.bootstrap import plan_store
from capplan_core.planning.explain import stored_step_rows
from capplan_core.planning.queue_result import QueueResult
from capplan_core.planning.stored_plan import PlanStatus, StoredPlan
from capplan_core.policy import ScalingPolicy
from tasks.common import capplan_io_task


def plan_result(plan: StoredPlan, note: str | None = None) -> QueueResult:
    """The plan as a cycle reports it: the plan, its details and its explanation rows."""
    return QueueResult.from_plan(plan).with_view(plan.details, stored_step_rows(plan), note)


def plan_view(plan: StoredPlan, note: str | None = None) -> dict[str, Any]:
    """:func:`plan_result`'s JSON form (what the flows return)."""
    return plan_result(plan, note).to_json()


@capplan_io_task(name="read-plan", task_run_name="read-plan-{plan_id}")
def read_plan(plan_id: int, note: str | None = None) -> dict[str, Any]:
    return plan_view(plan_store().get_plan(plan_id), note)


def find_own_plan(flow_run_id: str) -> dict[str, Any] | None:
    """The proposed plan this flow run already made (a suspended run that was resumed)."""
    plan = plan_store().plan_for_flow_run(flow_run_id)
    if plan is None or plan.status != PlanStatus.PROPOSED:
        return None
    return plan_view(plan)


@capplan_io_task(name="plan-policy", task_run_name="plan-policy-{plan_id}")
def plan_policy(plan_id: int) -> ScalingPolicy:
    """The policy version the plan was made under (it is decided and executed under it)."""
    store = plan_store()
    return store.policy_for_plan(store.get_plan(plan_id))


@capplan_io_task(name="link-approval-run", task_run_name="link-approval-run-{plan_id}")
def link_approval_run(plan_id: int, flow_run_id: str) -> None:
    """Point the plan at the run that waits for its decision (a person resumes that run)."""
    plan_store().set_flow_run(plan_id, flow_run_id)
