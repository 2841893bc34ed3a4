"""Execute stage: apply the first step now, schedule later steps as apply-step runs."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import get_run_logger

from capplan_app import bootstrap
from capplan_app.bootstrap import is_dry_run, plan_store
from capplan_core.execution.due import self_kill_hook
from capplan_core.execution.executor import (
    DEFAULT_LEASE_S,
    StepResult,
    apply_step,
    cancel_outside_window,
    planned_live_replicas,
)
from capplan_core.execution.k8s_keda import plan_trigger_target
from capplan_core.execution.ordering import replay_offset
from capplan_core.planning.records import plan_summary
from tasks.common import capplan_io_task
from tasks.events import emit_plan_event

APPLY_STEP_DEPLOYMENT = "apply-step/apply-step"
READY_TIMEOUT_S = 300.0


def schedule_apply_step(plan_id: int, step_id: int, at: datetime) -> str | None:
    """A scheduled run of the apply-step deployment; None when it is not deployed here."""
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    try:
        # called from sync code, so a FlowRun (not the coroutine of the async overload)
        run: FlowRun = run_deployment(  # type: ignore[assignment]
            APPLY_STEP_DEPLOYMENT, parameters={"plan_id": plan_id, "step_id": step_id},
            scheduled_time=at, timeout=0, flow_run_name=f"apply-plan-{plan_id}-step-{step_id}")
    except ObjectNotFound:
        return None
    return str(run.id)


def _run_id() -> str:
    """This task run's id (names the step claims and target leases it holds)."""
    from prefect.runtime import task_run

    return f"task-{task_run.id or uuid.uuid4().hex[:12]}"


# Retries re-run the whole step, which is safe: the step is claimed in the store, a retry
# takes its own claim back (same run id) or finds it final; transient cluster faults are
# retried inside apply_step, reading back before each retry.
@capplan_io_task(name="apply-step", task_run_name="apply-plan-{plan_id}-step-{step_id}",
                 retries=2)
def apply_one_step(plan_id: int, step_id: int, actor: str = "capplan",
                   lease_s: float = DEFAULT_LEASE_S) -> StepResult:
    """Apply one step (see :func:`capplan_core.execution.executor.apply_step`); a permanent
    fault fails the plan and emits ``capplan.plan.failed``."""
    store = plan_store()
    plan = store.get_plan(plan_id)
    policy = store.policy_for_plan(plan)
    limits = store.approval_limits(plan_id)
    dry = is_dry_run()
    # a hybrid policy's ScaledObject also gets the rate target that goes with the floor
    scaler = bootstrap.scaler(dry_run_replicas=planned_live_replicas(plan.steps, step_id,
                                                         plan.current_workers or 0),
                              trigger_target=plan_trigger_target(policy,
                                                                 plan.details.get("state")))
    result = apply_step(store, scaler, policy, plan_id, step_id, now=datetime.now(UTC),
                        actor=actor, run_id=_run_id(), max_workers=limits.get("max_workers"),
                        wait_ready_s=0.0 if dry else READY_TIMEOUT_S, cooldown_scope_plan=dry,
                        lease_s=lease_s, lease_wait_s=10.0,
                        hook=self_kill_hook(os.environ.get("CAPPLAN_FAULT_KILL_AT")))
    if result.plan_failed:
        emit_plan_event("failed", plan_summary(store.get_plan(plan_id)), actor=actor)
    return result


@capplan_io_task(name="execute", task_run_name="execute-{policy_name}-plan-{plan_id}", retries=0)
def execute_plan(policy_name: str, plan_id: int, apply_hours: float | None = None,
                 actor: str = "capplan") -> dict[str, Any]:
    """First step now; each later step becomes a scheduled apply-step run at its time."""
    logger = get_run_logger()
    store = plan_store()
    run = cancel_outside_window(store, plan_id, apply_hours=apply_hours, actor=actor)
    plan = store.get_plan(plan_id)
    if not run:
        return {"plan_id": plan_id, "applied": [], "scheduled": []}
    first, later = run[0], run[1:]
    result = apply_one_step(plan_id, first.id, actor)
    logger.info("plan %s step %s: %s (%s)", plan_id, first.id, result.outcome, result.reason)
    scheduled = []
    for st in later:
        # a replay's steps come due on its own clock (see capplan_core.execution.ordering)
        at = max(st.execute_at + replay_offset(plan), datetime.now(UTC) + timedelta(seconds=5))
        run_id = schedule_apply_step(plan_id, st.id, at)
        note = ("apply-step deployment" if run_id else
                "not scheduled: no apply-step deployment on this Prefect server "
                "(deploy prefect.yaml, or run `capplan plans apply-due`)")
        store.audit("step_scheduled", actor=actor, plan_id=plan_id, queue=plan.queue,
                    details={"step_id": st.id, "execute_at": st.execute_at.isoformat(),
                             "to_workers": st.to_workers, "flow_run_id": run_id,
                             "scheduler": note})
        scheduled.append({"step_id": st.id, "flow_run_id": run_id})
    return {"plan_id": plan_id, "applied": [result.__dict__], "scheduled": scheduled}
