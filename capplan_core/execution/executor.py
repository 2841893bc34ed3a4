"""Apply an approved plan's steps through a Scaler: once each, re-checking before acting.

``apply_step`` is the one place a step turns into a cluster write. Before it writes it checks
that the plan is still the queue's current approved plan (a newer plan supersedes it), reads
the live replica count, and runs the pure guard (:func:`capplan_core.execution.guard.check_step`:
already applied, min/max, drift, max step, cooldown). Every outcome is stored on the step and
audited; a step never runs twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from capplan_core.execution.guard import GuardAction, check_step
from capplan_core.execution.scaler import Scaler, ScalerError
from capplan_core.planning.repository import PlanRepository
from capplan_core.planning.stored_plan import PlanStatus, StepStatus, StoredPlan, StoredStep
from capplan_core.policy import ScalingPolicy


@dataclass(frozen=True)
class _CappedStep:
    to_workers: int


@dataclass
class StepResult:
    step_id: int
    outcome: str  # applied | noop | refused | deferred | cancelled | already-<status>
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    retry_after_s: float | None = None


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in d.items()}


def apply_step(
    store: PlanRepository, scaler: Scaler, policy: ScalingPolicy, plan_id: int, step_id: int, *,
    now: datetime, actor: str, max_workers: int | None = None, wait_ready_s: float = 0.0,
    cooldown_scope_plan: bool = False,
) -> StepResult:
    """Apply one step of an approved plan, or record why not.

    Raises:
        ScalerError: the cluster could not be read or written; nothing changed, and the audit
            says so (``scale_failed``). The step stays pending so a later run may retry it.
    """
    plan = store.get_plan(plan_id)
    step = next((s for s in plan.steps if s.id == step_id), None)
    if step is None:
        raise ValueError(f"plan {plan_id} has no step {step_id}")
    if step.status != StepStatus.PENDING:
        return StepResult(step_id, f"already-{step.status}", "a step never runs twice")
    current = store.current_plan(plan.queue)
    if plan.status not in (PlanStatus.APPROVED, PlanStatus.APPLIED) or current is None \
            or current.id != plan.id:
        why = (f"plan {plan_id} is {plan.status}" if plan.status != PlanStatus.APPROVED
               else f"plan {plan_id} is no longer current for {plan.queue}")
        store.mark_step(step_id, StepStatus.CANCELLED, actor=actor, details={"reason": why})
        return StepResult(step_id, "cancelled", why)

    to = step.to_workers if max_workers is None else min(step.to_workers, max_workers)
    target = policy.target
    base = {"from_workers": step.from_workers, "to_workers": to,
            "execute_at": step.execute_at.isoformat(), "scaler": type(scaler).__name__,
            "target": target.model_dump()}
    try:
        live = scaler.get_replicas(target)
    except ScalerError as err:
        store.audit("scale_failed", actor=actor, plan_id=plan_id, queue=plan.queue,
                    details={**base, "error": str(err), "kind": err.kind})
        raise
    last_at = store.last_scale_at(plan.queue, plan_id=plan_id if cooldown_scope_plan else None)
    verdict = check_step(_CappedStep(to), live, step.from_workers, last_at, now, policy,
                         max_workers=max_workers)
    details = {**base, "live_before": live, "guard": verdict.action.value,
               "reason": verdict.reason}
    if verdict.action == GuardAction.NOOP_ALREADY_APPLIED:
        store.mark_step(step_id, StepStatus.NOOP, actor=actor, details=details)
        return StepResult(step_id, "noop", verdict.reason, details)
    if verdict.action == GuardAction.REFUSE_COOLDOWN:
        store.audit("guard_deferred", actor=actor, plan_id=plan_id, queue=plan.queue,
                    details=details)
        return StepResult(step_id, "deferred", verdict.reason, details, verdict.retry_after_s)
    if verdict.refused:
        store.mark_step(step_id, StepStatus.REFUSED, actor=actor, details=details)
        action = "drift" if verdict.action == GuardAction.REFUSE_DRIFT else "guard_refused"
        store.audit(action, actor=actor, plan_id=plan_id, queue=plan.queue, details=details)
        return StepResult(step_id, "refused", verdict.reason, details)
    try:
        outcome = scaler.set_replicas(target, to)
    except ScalerError as err:
        store.audit("scale_failed", actor=actor, plan_id=plan_id, queue=plan.queue,
                    details={**details, "error": str(err), "kind": err.kind})
        raise
    details["outcome"] = _jsonable(asdict(outcome))
    if wait_ready_s > 0:
        ready = scaler.wait_ready(target, to, wait_ready_s)
        details["ready"] = asdict(ready)
    store.mark_step(step_id, StepStatus.APPLIED, actor=actor, details=details)
    store.audit("scale", actor=actor, plan_id=plan_id, queue=plan.queue, details=details)
    return StepResult(step_id, "applied", verdict.reason, details)


def steps_in_window(
    steps: Sequence[StoredStep], *, plan_start: datetime, apply_hours: float | None
) -> tuple[list[StoredStep], list[StoredStep]]:
    """Pending steps inside the approved window, and those cut off by ``apply_hours``."""
    pending = [s for s in steps if s.status == StepStatus.PENDING]
    if apply_hours is None:
        return pending, []
    cutoff = plan_start + timedelta(hours=apply_hours)
    return ([s for s in pending if s.execute_at < cutoff],
            [s for s in pending if s.execute_at >= cutoff])


def cancel_outside_window(
    store: PlanRepository, plan_id: int, *, apply_hours: float | None, actor: str
) -> list[StoredStep]:
    """Cancel steps beyond an approver's "first N hours"; return the steps still to run."""
    plan = store.get_plan(plan_id)
    run, cut = steps_in_window(list(plan.steps), plan_start=plan.as_of or plan.created_at,
                               apply_hours=apply_hours)
    for st in cut:
        store.mark_step(st.id, StepStatus.CANCELLED, actor=actor,
                        details={"reason": f"outside the approved first {apply_hours} h"})
    return run


def due_steps(plans: Iterable[StoredPlan], now: datetime) -> list[tuple[int, int]]:
    """(plan id, step id) of every pending step of an approved plan whose time has come."""
    return [(plan.id, st.id) for plan in plans if plan.status == PlanStatus.APPROVED
            for st in plan.steps if st.status == StepStatus.PENDING and st.execute_at <= now]


def planned_live_replicas(steps: Sequence[StoredStep], step_id: int, current: int) -> int:
    """The replica count the plan expects just before ``step_id``: the target of the last
    step applied (or found already applied) before it, else ``current``. A dry run's "live"
    count: the world did what the plan said."""
    prev = current
    for st in steps:
        if st.id == step_id:
            return prev
        if st.status in (StepStatus.APPLIED, StepStatus.NOOP):
            prev = st.to_workers
    return prev
