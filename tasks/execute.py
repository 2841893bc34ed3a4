"""Execute stage: apply a step only when it is due; later steps become scheduled apply-step
runs at their time (and the apply-due sweeper applies whatever is due and left behind)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any

from prefect import get_run_logger
from pydantic import Field

from capplan_app import bootstrap
from capplan_app.bootstrap import is_dry_run, plan_store, run_key_scope
from capplan_app.settings import get_settings
from capplan_core.execution.due import DueRun, apply_due, self_kill_hook
from capplan_core.execution.executor import (
    DEFAULT_LEASE_S,
    MAX_LEASE_S,
    MIN_LEASE_S,
    StepResult,
    apply_step,
    cancel_outside_window,
    not_due_yet,
)
from capplan_core.execution.ordering import WINDOW_PASSED
from capplan_core.planning.records import plan_summary
from tasks.common import capplan_io_task
from tasks.events import emit_plan_event

APPLY_STEP_DEPLOYMENT = "apply-step/apply-step"
CAPACITY_PLAN_DEPLOYMENT = "capacity-plan/capacity-plan"
#: the ``lease_s`` run parameter of the flows that apply steps (validated where it enters)
LeaseSeconds = Annotated[
    float,
    Field(
        ge=MIN_LEASE_S,
        le=MAX_LEASE_S,
        allow_inf_nan=False,
        description="how long this run holds a step and its target (s, the store's clock), "
        "renewed before every write",
    ),
]
READY_TIMEOUT_S = 300.0


def schedule_apply_step(
    plan_id: int, step_id: int, at: datetime, attempt: int | str = 0
) -> str | None:
    """A scheduled run of the apply-step deployment at ``at``; None when it is not deployed
    here. One run per (step, ``attempt``): a retried caller gets the run made first."""
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    try:
        # called from sync code, so a FlowRun (not the coroutine of the async overload)
        run: FlowRun = run_deployment(  # type: ignore[assignment]
            APPLY_STEP_DEPLOYMENT,
            parameters={"plan_id": plan_id, "step_id": step_id},
            scheduled_time=at,
            timeout=0,
            flow_run_name=f"apply-plan-{plan_id}-step-{step_id}",
            # the store's id too: plan and step ids are per store, and stores may share a
            # Prefect server (another store's plan 1 step 1 is not this one)
            idempotency_key=f"apply-{run_key_scope()}-plan-{plan_id}-step-{step_id}-{attempt}",
        )
    except ObjectNotFound:
        return None
    return str(run.id)


def request_replan(policy_name: str, why: str) -> str | None:
    """A run of the capacity-plan deployment for this one policy, now (``timeout=0``: not
    awaited); None when it is not deployed here. A cycle already running drops it
    (CANCEL_NEW), which is fine: that cycle plans the queue from fresher data."""
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    try:
        # called from sync code, so a FlowRun (not the coroutine of the async overload)
        run: FlowRun = run_deployment(  # type: ignore[assignment]
            CAPACITY_PLAN_DEPLOYMENT,
            parameters={"policies": [policy_name]},
            timeout=0,
            flow_run_name=f"re-plan {policy_name} after {why}",
        )
    except ObjectNotFound:
        return None
    return str(run.id)


def policies_to_replan(done: list[dict[str, Any]]) -> dict[str, int]:
    """{policy name: plan id} of the plans a step of which just expired because its window
    passed unapplied (a run died mid-step and the sweeper took it over too late, say): the
    queue's pool is not what its plan asked for, and waiting for the next cycle would leave it
    so for a whole cycle. One entry per policy."""
    store = plan_store()
    out: dict[str, int] = {}
    for d in done:
        if d["outcome"] == "expired" and str(d["reason"]).startswith(WINDOW_PASSED):
            plan = store.get_plan(d["plan_id"])
            if plan.policy_name:
                out.setdefault(plan.policy_name, plan.id)
    return out


def _run_id() -> str:
    """This task run's id (names the step claims and target leases it holds)."""
    from prefect.runtime import task_run

    return f"task-{task_run.id or uuid.uuid4().hex[:12]}"


# Retries re-run the whole step, which is safe: the step is claimed in the store, a retry
# takes its own claim back (same run id) or finds it final; transient cluster faults are
# retried inside apply_step, reading back before each retry.
@capplan_io_task(name="apply-step", task_run_name="apply-plan-{plan_id}-step-{step_id}", retries=2)
def apply_one_step(
    plan_id: int, step_id: int, actor: str = "capplan", lease_s: float = DEFAULT_LEASE_S
) -> StepResult:
    """Apply one step (see :func:`capplan_core.execution.executor.apply_step`); a permanent
    fault fails the plan and emits ``capplan.plan.failed``."""
    bootstrap.refuse_writes_in_planning_pool(f"apply-step of plan {plan_id} step {step_id}")
    store = plan_store()
    plan = store.get_plan(plan_id)
    policy = store.policy_for_plan(plan)
    limits = store.approval_limits(plan_id)
    dry = is_dry_run()
    scaler = bootstrap.step_scaler(plan, step_id)
    result = apply_step(
        store,
        scaler,
        policy,
        plan_id,
        step_id,
        actor=actor,
        run_id=_run_id(),
        max_workers=limits.get("max_workers"),
        wait_ready_s=0.0 if dry else READY_TIMEOUT_S,
        cooldown_scope_plan=dry,
        lease_s=lease_s,
        lease_wait_s=10.0,
        hook=self_kill_hook(get_settings().fault_kill_at),
        authority=bootstrap.authority_check,
    )
    if result.plan_failed:
        emit_plan_event("failed", plan_summary(store.get_plan(plan_id)), actor=actor)
    return result


@capplan_io_task(name="execute", task_run_name="execute-{policy_name}-plan-{plan_id}", retries=2)
def execute_plan(
    policy_name: str, plan_id: int, apply_hours: float | None = None, actor: str = "capplan"
) -> dict[str, Any]:
    """Apply the plan's first step if it is due now (on the store's clock); every other step
    (and a first step not yet due, or deferred) becomes a scheduled apply-step run at its
    time. Safe to retry: applied steps answer ``already-applied``, and a scheduled run per
    step is created once (its idempotency key). The apply-due sweeper applies anything due
    that a lost run left behind.

    In the planning pool (``CAPPLAN_POOL_ROLE=planning``) nothing is applied here: every
    step, a due one too, becomes an apply-step run on the scaling pool (a due one at once),
    so the process that plans never holds the right to scale (docs/security.md)."""
    logger = get_run_logger()
    writes_here = not bootstrap.in_planning_pool()
    store = plan_store()
    run = cancel_outside_window(store, plan_id, apply_hours=apply_hours, actor=actor)
    plan = store.get_plan(plan_id)
    applied: list[dict[str, Any]] = []
    scheduled: list[dict[str, Any]] = []
    for i, st in enumerate(run):
        now = store.now()
        at = max(st.execute_at, now + timedelta(seconds=1))  # at its time, never before
        if i == 0 and writes_here and not_due_yet(plan, st.id, now) is None:
            result = apply_one_step(plan_id, st.id, actor)
            logger.info("plan %s step %s: %s (%s)", plan_id, st.id, result.outcome, result.reason)
            applied.append(result.__dict__)
            if result.outcome != "deferred" or result.retry_after_s is None:
                continue
            # a deferred first step is retried at its retry time (and swept up if lost)
            at = store.now() + timedelta(seconds=result.retry_after_s + 1.0)
        run_id = schedule_apply_step(plan_id, st.id, at, attempt=len(applied) if i == 0 else 0)
        note = (
            "apply-step deployment"
            if run_id
            else "not scheduled: no apply-step deployment on this Prefect server; the "
            "apply-due sweeper (or `capplan plans apply-due`) applies it when due"
        )
        store.audit(
            "step_scheduled",
            actor=actor,
            plan_id=plan_id,
            queue=plan.queue,
            details={
                "step_id": st.id,
                "execute_at": st.execute_at.isoformat(),
                "run_at": at.isoformat(),
                "to_workers": st.to_workers,
                "flow_run_id": run_id,
                "scheduler": note,
            },
        )
        scheduled.append({"step_id": st.id, "flow_run_id": run_id, "at": at.isoformat()})
    out: dict[str, Any] = {"plan_id": plan_id, "applied": applied, "scheduled": scheduled}
    if policies_to_replan([{"plan_id": plan_id, **r} for r in applied]):
        # approved after its first step's window passed (a late approval): the pool is not
        # what the plan asked for, so the queue is re-planned now, not at the next cycle
        out["replan_run"] = request_replan(policy_name, f"plan {plan_id}'s step expired")
        logger.warning(
            "plan %s: its first step expired; re-plan run %s", plan_id, out["replan_run"]
        )
    return out


@capplan_io_task(name="apply-due-steps", retries=0)
def apply_due_steps(
    lease_s: float = DEFAULT_LEASE_S, actor: str = "capplan"
) -> list[dict[str, Any]]:
    """Apply every due, open step of the approved plans (:func:`~capplan_core.execution.due.
    apply_due`), each claimed on the store's clock: safe beside apply-step runs and itself.
    A plan that failed emits ``capplan.plan.failed``."""
    bootstrap.refuse_writes_in_planning_pool("apply-due")
    store = plan_store()
    dry = is_dry_run()
    run = DueRun(
        run_id=_run_id(),
        actor=actor,
        lease_s=lease_s,
        wait_ready_s=0.0 if dry else READY_TIMEOUT_S,
        cooldown_scope_plan=dry,
        hook=self_kill_hook(get_settings().fault_kill_at),
        authority=bootstrap.authority_check,
    )
    done = apply_due(store, bootstrap.step_scaler, run=run)
    for d in done:
        if d["plan_failed"]:
            emit_plan_event("failed", plan_summary(store.get_plan(d["plan_id"])), actor=actor)
    return done
