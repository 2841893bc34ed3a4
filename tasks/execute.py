"""Execute stage: apply the first step now, schedule the later ones as apply-step runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import get_run_logger

from capplan_core.execution.executor import apply_first_step
from capplan_core.wiring import build_scaler, get_store
from tasks.common import capplan_io_task

APPLY_STEP_DEPLOYMENT = "apply-step/apply-step"


def schedule_step(plan_id: int, step_id: int, execute_at: datetime) -> str | None:
    """Create a scheduled run of the apply-step deployment; None if it is not deployed."""
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    try:
        run = run_deployment(APPLY_STEP_DEPLOYMENT, parameters={"plan_id": plan_id,
                                                                "step_id": step_id},
                             scheduled_time=execute_at, timeout=0,
                             flow_run_name=f"apply-plan-{plan_id}-step-{step_id}")
    except ObjectNotFound:
        return None
    return str(run.id)


@capplan_io_task(name="execute", task_run_name="execute-plan-{plan_id}")
def execute_plan(
    plan_id: int, limit_max_workers: int | None = None, apply_hours: float | None = None,
    actor: str = "capplan",
) -> dict[str, Any]:
    logger = get_run_logger()
    store = get_store()
    plan = store.get_plan(plan_id)
    policy = store.get_policy(plan.details["policy"])
    scaler = build_scaler(store, plan.queue, fallback_replicas=plan.current_workers or 0)
    report = apply_first_step(store, scaler, policy, plan_id, actor=actor,
                              max_workers=limit_max_workers, apply_hours=apply_hours)
    for applied in report.applied:
        logger.info("plan %s: %s -> %s workers (%s)", plan_id, applied["live_before"],
                    applied["to_workers"], applied["scaler"])
    for st in report.scheduled:
        run_id = schedule_step(plan_id, st["step_id"], datetime.fromisoformat(st["execute_at"]))
        st["flow_run_id"] = run_id
        store.audit("step_scheduled", actor=actor, plan_id=plan_id, queue=plan.queue,
                    details={**st, "scheduler": "apply-step deployment" if run_id else
                             "not scheduled: no apply-step deployment on this Prefect server "
                             "(run `capplan apply-due` or deploy prefect.yaml)"})
    return {"plan_id": plan_id, "applied": report.applied, "scheduled": report.scheduled,
            "skipped": report.skipped}
