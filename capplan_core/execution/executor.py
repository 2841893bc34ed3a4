"""Apply an approved plan's steps through a Scaler: once each, re-checking before acting.

``apply_step`` is the one place a step turns into a cluster write. It walks the step's state
machine (:data:`~capplan_core.planning.stored_plan.STEP_TRANSITIONS`, docs/reliability.md):

1. the earlier steps of the plan must be done (order), the step must be due on the store's
   clock (never early: a step not yet due is ``deferred`` until it is), and the run takes the
   target's lease (one writer per target) and claims the step (``pending -> claimed``, with a
   lease on the store's clock);
2. a step taken over from a run whose lease ran out while ``applying`` is read back first: if
   that run's write landed, the step is ``applied`` (audited as recovered), never written twice;
3. a stale step (its window passed, its plan expired or superseded) is ``expired``; a step of a
   plan that is no longer live is ``cancelled``;
4. the live count and its version are read, the pure guard runs
   (:func:`capplan_core.execution.guard.check_step`), the intent is recorded (``applying``,
   with from/to, the live count and version), the write carries that version
   (:func:`capplan_core.execution.write.write_step`), and the outcome is recorded after it.
   Before every write attempt the claim and the target lease are renewed: a run that lost
   either (its lease ran out and another run took the step over) writes nothing more and
   records nothing as applied (fencing).

A permanent fault fails the step and its plan (``failed``); transient faults are retried a
bounded number of times, reading back before each retry.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime, timedelta

from capplan_core.approval.authority import AuthorityCheck
from capplan_core.execution.ordering import blocking_step, due_steps
from capplan_core.execution.scaler import Scaler, ScalerError
from capplan_core.execution.step_machine import (
    StepResult,
    StepRun,
    find_step,
    run_claimed,
    target_lock_key,
)
from capplan_core.execution.write import RetryPolicy
from capplan_core.planning.repository import PlanRepository
from capplan_core.planning.stored_plan import (
    STEP_FINAL,
    PlanStatus,
    StepStatus,
    StoredPlan,
    StoredStep,
)
from capplan_core.policy import ScalingPolicy

__all__ = [
    "DEFAULT_LEASE_S",
    "MAX_LEASE_S",
    "MIN_LEASE_S",
    "RetryPolicy",
    "StepResult",
    "apply_step",
    "cancel_outside_window",
    "check_lease_s",
    "due_steps",
    "not_due_yet",
    "planned_live_replicas",
    "steps_in_window",
    "target_lock_key",
]

#: How long a claim and a target lease last (s), on the store's clock. The claim and the
#: target lease are renewed before every write attempt, so this must cover one guarded read
#: or one write with its time-out (Kubernetes: 3 s connect + 10 s read), not the whole run;
#: a killed run's step is taken over after this.
DEFAULT_LEASE_S = 60.0
#: Bounds of a lease a person may ask for (a flow parameter, ``--lease-seconds``).
MIN_LEASE_S = 1.0
MAX_LEASE_S = 3600.0
#: Fault-injection points a hook sees: after the claim, after the intent (before the write),
#: after the write (before the outcome is recorded).
HOOK_POINTS = ("claimed", "applying", "written")


def check_lease_s(lease_s: float) -> float:
    """``lease_s`` if it is a usable lease length, else ``ValueError`` naming it: finite and
    within [:data:`MIN_LEASE_S`, :data:`MAX_LEASE_S`] (``inf`` would overflow the lease
    time; zero or less would free the claim at once)."""
    if not (math.isfinite(lease_s) and MIN_LEASE_S <= lease_s <= MAX_LEASE_S):
        raise ValueError(
            f"lease_s: {lease_s!r} must be a finite number of seconds between "
            f"{MIN_LEASE_S:g} and {MAX_LEASE_S:g}"
        )
    return lease_s


def not_due_yet(plan: StoredPlan, step_id: int, now: datetime) -> float | None:
    """Seconds until ``step_id`` is due (its own ``execute_at``), or None when it is due at
    ``now``. ``execute_at`` already includes the startup lead of a scale-up; a step is never
    applied before it. (A late earlier step does not postpone it: order and the cooldown guard
    keep the steps apart, and the window it was sized for does not move.)"""
    wait_s = (find_step(plan, step_id).execute_at - now).total_seconds()
    return wait_s if wait_s > 0 else None


def apply_step(
    store: PlanRepository,
    scaler: Scaler,
    policy: ScalingPolicy,
    plan_id: int,
    step_id: int,
    *,
    actor: str = "capplan",
    run_id: str | None = None,
    max_workers: int | None = None,
    wait_ready_s: float = 0.0,
    cooldown_scope_plan: bool = False,
    lease_s: float = DEFAULT_LEASE_S,
    retry: RetryPolicy | None = None,
    hook: Callable[[str], None] | None = None,
    lease_wait_s: float = 0.0,
    authority: AuthorityCheck | None = None,
) -> StepResult:
    """Apply one step of an approved plan when it is due, or record why not (module doc).

    Time is the store's clock (``store.now()``), never this process's: the due check, the
    claim and target leases, staleness and cooldown all read it. A step not yet due is
    ``deferred`` with ``retry_after_s`` = the seconds until it is.

    ``lease_wait_s``: how long to wait for another run's lease on the same target before
    deferring (runs on one target serialize; the holder needs only a read and a write).

    ``run_id`` names this run's claims and leases (a fresh one if None); ``hook(point)`` is
    called at :data:`HOOK_POINTS` (fault injection). Never raises for a scaler fault: the
    outcome (``failed``, or ``deferred`` after transient faults) carries the reason.

    ``authority(plan, policy)``: the approval re-checked right before the write
    (:mod:`capplan_core.approval.authority`); a plan whose approval does not hold gets its step
    ``refused`` (audited ``unauthorized``) and fails, and nothing is written.
    """
    if not (math.isfinite(lease_s) and lease_s > 0):
        raise ValueError(f"lease_s: {lease_s!r} must be a finite number of seconds > 0")
    plan = store.get_plan(plan_id)
    step = find_step(plan, step_id)
    if step.status in STEP_FINAL:
        return StepResult(step_id, f"already-{step.status}", "a step never runs twice")
    # a step of a plan that is no longer approved is only ever resolved (read back if it was
    # being written, then cancelled or expired), never applied: order and time do not matter
    blocker = blocking_step(plan.steps, step_id) if plan.status == PlanStatus.APPROVED else None
    if blocker is not None:
        return StepResult(
            step_id,
            "deferred",
            f"earlier step {blocker.id} of plan {plan_id} "
            f"is still {blocker.status}; steps apply in order",
            retry_after_s=max(policy.scaling.cooldown_seconds, 30.0),
        )
    wait_s = not_due_yet(plan, step_id, store.now()) if plan.status == PlanStatus.APPROVED else None
    if wait_s is not None:
        due_at = step.execute_at
        return StepResult(
            step_id,
            "deferred",
            f"not due until {due_at.isoformat()} "
            f"(in {wait_s:.0f} s); a step is never applied early",
            {"due_at": due_at.isoformat(), "not_due": True},
            retry_after_s=wait_s,
        )
    run = StepRun(
        store,
        scaler,
        policy,
        plan_id,
        step_id,
        actor,
        run_id or f"run-{uuid.uuid4().hex[:12]}",
        lease_s,
        retry or RetryPolicy(),
        hook,
        max_workers,
        cooldown_scope_plan,
        authority,
        lease_wait_s=lease_wait_s,
    )
    key = target_lock_key(policy.target)
    if not _take_target(store, key, run.run_id, lease_s, lease_wait_s, run.retry):
        return StepResult(
            step_id, "deferred", f"another run is writing to {key}", retry_after_s=lease_s
        )
    try:
        result = run_claimed(run)
    finally:
        store.release_target_lease(key, holder=run.run_id)
    if result.outcome == "applied" and wait_ready_s > 0 and "recovered" not in result.details:
        to = int(result.details["to_workers"])
        try:
            ready = scaler.wait_ready(policy.target, to, wait_ready_s)
            result.details["ready"] = asdict(ready)
            store.audit(
                "step_ready",
                actor=actor,
                plan_id=plan_id,
                queue=plan.queue,
                details={"step_id": step_id, **asdict(ready)},
            )
        except ScalerError as err:  # the step is applied; only the wait failed
            result.details["ready_error"] = str(err)
    return result


def _take_target(
    store: PlanRepository,
    key: str,
    run_id: str,
    lease_s: float,
    wait_s: float,
    retry: RetryPolicy | None,
) -> bool:
    """Take the target lease (on the store's clock), polling up to ``wait_s`` seconds."""
    sleep = (retry or RetryPolicy()).sleep
    started = time.monotonic()
    while True:
        if store.acquire_target_lease(key, holder=run_id, lease_s=lease_s):
            return True
        if time.monotonic() - started >= wait_s:
            return False
        sleep(0.05)


def steps_in_window(
    steps: Sequence[StoredStep], *, plan_start: datetime, apply_hours: float | None
) -> tuple[list[StoredStep], list[StoredStep]]:
    """Pending steps inside the approved window, and those cut off by ``apply_hours``."""
    pending = [s for s in steps if s.status == StepStatus.PENDING]
    if apply_hours is None:
        return pending, []
    cutoff = plan_start + timedelta(hours=apply_hours)
    return (
        [s for s in pending if s.execute_at < cutoff],
        [s for s in pending if s.execute_at >= cutoff],
    )


def cancel_outside_window(
    store: PlanRepository, plan_id: int, *, apply_hours: float | None, actor: str
) -> list[StoredStep]:
    """Cancel steps beyond an approver's "first N hours"; return the steps still to run."""
    plan = store.get_plan(plan_id)
    run, cut = steps_in_window(
        list(plan.steps), plan_start=plan.as_of or plan.created_at, apply_hours=apply_hours
    )
    for st in cut:
        store.mark_step(
            st.id,
            StepStatus.CANCELLED,
            actor=actor,
            details={"reason": f"outside the approved first {apply_hours} h"},
        )
    return run


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
