"""Apply an approved plan's steps through a Scaler, once each, re-checking before acting."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from capplan_core.policy import ScalingPolicy
from capplan_core.store.models import PlanStatus, ScalingStepRow, StepStatus
from capplan_core.store.repo import PlanStore


@dataclass
class ExecutionReport:
    plan_id: int
    applied: list[dict[str, Any]] = field(default_factory=list)
    scheduled: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)


def _cap(step: ScalingStepRow, max_workers: int | None) -> int:
    return step.to_workers if max_workers is None else min(step.to_workers, max_workers)


def steps_to_run(
    steps: list[ScalingStepRow], *, plan_start: datetime, apply_hours: float | None
) -> tuple[list[ScalingStepRow], list[ScalingStepRow]]:
    """Pending steps inside the approved window, and the ones cut off by ``apply_hours``."""
    pending = [s for s in steps if s.status == StepStatus.PENDING]
    if apply_hours is None:
        return pending, []
    cutoff = plan_start + timedelta(hours=apply_hours)
    return [s for s in pending if s.execute_at < cutoff], [s for s in pending if
                                                           s.execute_at >= cutoff]


def apply_first_step(
    store: PlanStore, scaler: Any, policy: ScalingPolicy, plan_id: int, *, actor: str,
    max_workers: int | None = None, apply_hours: float | None = None,
) -> ExecutionReport:
    """Apply the first pending step now; return the later steps for scheduling.

    Idempotent: a step already applied is never applied again, and a step whose target equals
    the live replica count is recorded as a no-op without a write to the cluster.
    """
    plan = store.get_plan(plan_id)
    report = ExecutionReport(plan_id)
    if plan.status != PlanStatus.APPROVED:
        report.skipped.append({"reason": f"plan is {plan.status}, not approved"})
        return report
    if not plan.steps:
        return report
    plan_start = plan.as_of or plan.created_at
    run, cut = steps_to_run(list(plan.steps), plan_start=plan_start, apply_hours=apply_hours)
    for st in cut:
        store.mark_step(st.id, StepStatus.CANCELLED, actor=actor,
                        details={"reason": f"outside the approved first {apply_hours} h"})
        report.skipped.append({"step_id": st.id, "reason": "outside approved window"})
    first = plan.steps[0]
    later = [st for st in run if st.id != first.id]
    for st in later:
        report.scheduled.append({"step_id": st.id, "execute_at": st.execute_at.isoformat(),
                                 "to_workers": _cap(st, max_workers)})
    if first.status != StepStatus.PENDING or first not in run:
        # already applied by an earlier attempt (a retry must not apply a later step early)
        return report
    target = policy.target
    live = scaler.get_replicas(target)
    to = _cap(first, max_workers)
    details = {"from_workers": first.from_workers, "to_workers": to, "live_before": live,
               "execute_at": first.execute_at.isoformat(), "scaler": type(scaler).__name__,
               "target": target.model_dump()}
    if live == to:
        store.mark_step(first.id, StepStatus.NOOP, actor=actor, details=details)
    else:
        outcome = scaler.set_replicas(target, to)
        details["outcome"] = _outcome_dict(outcome)
        store.mark_step(first.id, StepStatus.APPLIED, actor=actor, details=details)
        store.audit("scale", actor=actor, plan_id=plan_id, queue=plan.queue, details=details)
    report.applied.append({"step_id": first.id, **details})
    return report


def _outcome_dict(outcome: Any) -> dict[str, Any]:
    if outcome is None:
        return {}
    if hasattr(outcome, "__dataclass_fields__"):
        from dataclasses import asdict

        return {k: (v.isoformat() if isinstance(v, datetime) else v)
                for k, v in asdict(outcome).items()}
    return {"value": str(outcome)}
