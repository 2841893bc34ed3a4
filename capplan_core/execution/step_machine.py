"""One claimed step's walk through its state machine, under the target lease.

:mod:`capplan_core.execution.executor` checks order, takes the target lease and calls
:func:`run_claimed`; this module claims the step, reads back a taken-over one, expires or
cancels a stale one, runs the guard, records the intent and the outcome around the write.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from capplan_core.approval.authority import AuthorityCheck
from capplan_core.execution.guard import GuardAction, GuardDecision, check_step
from capplan_core.execution.ordering import stale_reason
from capplan_core.execution.scaler import LiveReplicas, Scaler, ScalerError
from capplan_core.execution.write import RetryPolicy, write_step
from capplan_core.planning.errors import DecisionConflict
from capplan_core.planning.repository import PlanRepository
from capplan_core.planning.stored_plan import (
    STEP_FINAL,
    PlanStatus,
    StepStatus,
    StoredPlan,
    StoredStep,
)
from capplan_core.policy import ScalingPolicy, TargetSpec


@dataclass(frozen=True)
class _CappedStep:
    to_workers: int


@dataclass
class StepResult:
    step_id: int
    # applied | noop | refused | deferred | cancelled | expired | failed | already-<status>
    outcome: str
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    retry_after_s: float | None = None
    plan_failed: bool = False


def target_lock_key(target: TargetSpec) -> str:
    """The target lease's key: ``kind:namespace/name``."""
    return f"{target.kind}:{target.namespace}/{target.name}"


@dataclass
class StepRun:
    """One apply_step call: who runs, against what, and how."""

    store: PlanRepository
    scaler: Scaler
    policy: ScalingPolicy
    plan_id: int
    step_id: int
    actor: str
    run_id: str
    lease_s: float
    retry: RetryPolicy
    hook: Callable[[str], None] | None
    max_workers: int | None
    cooldown_scope_plan: bool
    #: re-checks the plan's approval before the write (issue 24); None: not checked (the
    #: pure tests of the step machine); every production path gives one (capplan_app.bootstrap)
    authority: AuthorityCheck | None = None
    #: how long the fence waits for the target lease while this run still holds the step
    #: (another run on the same target holds it for a read; see :meth:`still_holds`)
    lease_wait_s: float = 0.0

    def point(self, name: str) -> None:
        if self.hook is not None:
            self.hook(name)

    def now(self) -> datetime:
        """The store's clock: the one clock of claims, leases, staleness and cooldown."""
        return self.store.now()

    def move(
        self,
        frm: StepStatus,
        to: StepStatus,
        details: dict[str, Any],
        action: str | None = None,
        renew: bool = False,
        lease_ended: bool = False,
    ) -> bool:
        return self.store.move_step(
            self.step_id,
            frm,
            to,
            run_id=self.run_id,
            actor=self.actor,
            details=details,
            action=action,
            lease_s=self.lease_s if renew else None,
            lease_ended=lease_ended,
        )

    def still_holds(self) -> bool:
        """Fencing before a cluster write: renew this run's claim on the step and take its
        lease on the target; False when the claim was lost (another run took the step over
        after it ran out), or the target stayed held by another run for ``lease_wait_s``.

        The target lease can lapse while the claim holds (a slow read under load): another
        run then takes the target lease, finds the step held by this run and lets it go
        within a read. Waiting for it, instead of giving up at once, keeps a run that still
        owns its step from leaving it ``applying`` with nobody to finish it."""
        key = target_lock_key(self.policy.target)
        deadline = time.monotonic() + self.lease_wait_s
        while True:
            if not self.store.renew_claim(self.step_id, run_id=self.run_id, lease_s=self.lease_s):
                return False
            if self.store.acquire_target_lease(key, holder=self.run_id, lease_s=self.lease_s):
                return True
            if time.monotonic() >= deadline:
                return False
            self.retry.sleep(0.05)


def find_step(plan: StoredPlan, step_id: int) -> StoredStep:
    step = next((s for s in plan.steps if s.id == step_id), None)
    if step is None:
        raise ValueError(f"plan {plan.id} has no step {step_id}")
    return step


def run_claimed(run: StepRun) -> StepResult:
    """Claim the step (or take it over) and carry it to an outcome under the target lease."""
    store, policy = run.store, run.policy
    claim = store.claim_step(run.step_id, run_id=run.run_id, lease_s=run.lease_s, actor=run.actor)
    if claim is None:
        st = find_step(store.get_plan(run.plan_id), run.step_id)
        if st.status in STEP_FINAL:
            return StepResult(run.step_id, f"already-{st.status}", "a step never runs twice")
        return StepResult(
            run.step_id,
            "deferred",
            f"step held by run {st.claimed_by} until "
            f"{st.lease_until.isoformat() if st.lease_until else '?'}",
            retry_after_s=run.lease_s,
        )
    run.point("claimed")
    status = StepStatus(claim.step.status)
    plan, step = store.get_plan(run.plan_id), claim.step
    to = step.to_workers if run.max_workers is None else min(step.to_workers, run.max_workers)
    base: dict[str, Any] = {
        "step_id": run.step_id,
        "run_id": run.run_id,
        "from_workers": step.from_workers,
        "to_workers": to,
        "execute_at": step.execute_at.isoformat(),
        "scaler": type(run.scaler).__name__,
        "target": policy.target.model_dump(),
    }
    if claim.was == StepStatus.APPLYING:
        # the run that recorded the intent died: did its write land? read before anything
        live = _read_or_release(run, status, base)
        if isinstance(live, StepResult):
            return live
        if live.replicas == to:
            details = {
                **base,
                "live_before": live.replicas,
                "recovered": True,
                "from_run": claim.taken_over_from,
                "reason": "the previous run's write had landed; not written again",
            }
            run.move(status, StepStatus.APPLIED, details)
            return StepResult(run.step_id, "applied", details["reason"], details)
    window_s = policy.forecast.interval_minutes * 60.0
    stale = stale_reason(plan, step, run.now(), window_s)
    if stale is not None:
        run.move(status, StepStatus.EXPIRED, {**base, "reason": stale})
        return StepResult(run.step_id, "expired", stale, base)
    current = store.current_plan(plan.queue)
    if plan.status != PlanStatus.APPROVED or current is None or current.id != plan.id:
        why = (
            f"plan {plan.id} is {plan.status}"
            if plan.status != PlanStatus.APPROVED
            else f"plan {plan.id} is no longer current for {plan.queue}"
        )
        run.move(status, StepStatus.CANCELLED, {**base, "reason": why})
        return StepResult(run.step_id, "cancelled", why)
    if run.authority is not None:
        unproven = run.authority(plan, policy)
        if unproven is not None:
            return _fail(
                run, status, unproven, base, step_to=StepStatus.REFUSED, audit="unauthorized"
            )
    live = _read_or_release(run, status, base)
    if isinstance(live, StepResult):
        return live
    return _guard_and_write(run, status, step, to, live, base)


def _guard_and_write(
    run: StepRun,
    status: StepStatus,
    step: StoredStep,
    to: int,
    live: LiveReplicas,
    base: dict[str, Any],
) -> StepResult:
    store, policy, plan_id = run.store, run.policy, run.plan_id
    queue = policy.queue
    last_at = store.last_scale_at(queue, plan_id=plan_id if run.cooldown_scope_plan else None)

    def guard(live_count: int) -> GuardDecision:
        return check_step(
            _CappedStep(to),
            live_count,
            step.from_workers,
            last_at,
            run.now(),
            policy,
            max_workers=run.max_workers,
        )

    verdict = guard(live.replicas)
    details = {
        **base,
        "live_before": live.replicas,
        "version_before": live.version,
        "guard": verdict.action.value,
        "reason": verdict.reason,
    }
    if verdict.action == GuardAction.NOOP_ALREADY_APPLIED:
        run.move(
            status, StepStatus.NOOP if status == StepStatus.CLAIMED else StepStatus.APPLIED, details
        )
        return StepResult(run.step_id, "noop", verdict.reason, details)
    if verdict.action == GuardAction.REFUSE_COOLDOWN:
        _release(run, status, details, "guard_deferred")
        return StepResult(run.step_id, "deferred", verdict.reason, details, verdict.retry_after_s)
    if verdict.refused:
        return _refuse(run, status, verdict, details)
    if not run.move(status, StepStatus.APPLYING, details, action="step_applying", renew=True):
        return StepResult(
            run.step_id, "deferred", "lost the claim before the write", details, run.lease_s
        )
    run.point("applying")
    wrote = write_step(
        run.scaler, policy.target, to, live, recheck=guard, retry=run.retry, fence=run.still_holds
    )
    details.update(wrote.details())
    if wrote.outcome == "lost-claim":
        return _lost_claim(run, details, bool(wrote.faults))
    if wrote.outcome == "applied":
        run.point("written")
        if not run.move(StepStatus.APPLYING, StepStatus.APPLIED, details):
            return _lost_claim(run, details, wrote.scale is not None)
        if wrote.scale is not None:
            store.audit("scale", actor=run.actor, plan_id=plan_id, queue=queue, details=details)
        return StepResult(run.step_id, "applied", verdict.reason, details)
    if wrote.outcome == "refused" and wrote.verdict is not None:
        details.update(
            live_before=wrote.live.replicas, guard=wrote.verdict.action.value, reason=wrote.reason
        )
        return _refuse(run, StepStatus.APPLYING, wrote.verdict, details)
    store.audit(
        "scale_failed",
        actor=run.actor,
        plan_id=plan_id,
        queue=queue,
        details={
            **details,
            "error": wrote.reason,
            "kind": wrote.faults[-1]["kind"] if wrote.faults else None,
        },
    )
    if wrote.outcome == "failed":
        return _fail(run, StepStatus.APPLYING, wrote.reason, details)
    _release(run, StepStatus.APPLYING, {**details, "reason": wrote.reason}, "step_in_doubt")
    return StepResult(run.step_id, "deferred", wrote.reason, details, run.lease_s)


def _lost_claim(run: StepRun, details: dict[str, Any], wrote: bool) -> StepResult:
    """The fence said no: this run writes nothing more and records nothing as applied.

    Either another run took the step over after this run's claim ran out (it reads the
    target back and records the outcome), or this run still holds the step but another run
    kept the target for longer than ``lease_wait_s``: then the step is released in doubt
    (``applying``, its lease ended), so the next run reads the target back first. A write
    this run made is audited as unconfirmed, so the trail still shows it."""
    released = run.move(
        StepStatus.APPLYING,
        StepStatus.APPLYING,
        {**details, "reason": "the target stayed held by another run"},
        action="step_in_doubt",
        lease_ended=True,
    )
    why = (
        f"the target stayed held by another run for {run.lease_wait_s:.0f} s; the step is "
        "released for the next run, which reads the target back first"
        if released
        else "lost the claim on the step during the write; the run that took it over reads "
        "the target back and records the outcome"
    )
    if wrote:
        run.store.audit(
            "scale_unconfirmed",
            actor=run.actor,
            plan_id=run.plan_id,
            queue=run.policy.queue,
            details={**details, "reason": why},
        )
    return StepResult(
        run.step_id, "deferred", why, {**details, "lost_claim": not released}, run.lease_s
    )


def _read_or_release(
    run: StepRun, status: StepStatus, base: dict[str, Any]
) -> LiveReplicas | StepResult:
    """Read the live count (retrying transient faults); on failure, a result that says so
    (permanent: the step and plan fail; transient: the step is released for a later run)."""
    last: ScalerError | None = None
    for attempt in range(1, run.retry.attempts + 1):
        try:
            return run.scaler.read(run.policy.target)
        except ScalerError as err:
            last = err
            if not err.transient:
                break
            run.retry.sleep(run.retry.backoff_s * attempt)
    if last is None:  # attempts < 1
        raise ValueError("RetryPolicy.attempts must be >= 1")
    details = {**base, "error": str(last), "kind": last.kind, "status": last.status}
    run.store.audit(
        "scale_failed",
        actor=run.actor,
        plan_id=run.plan_id,
        queue=run.policy.queue,
        details=details,
    )
    if not last.transient:
        return _fail(run, status, str(last), details)
    _release(
        run,
        status,
        {**details, "reason": str(last)},
        "step_in_doubt" if status == StepStatus.APPLYING else "step_released",
    )
    return StepResult(
        run.step_id, "deferred", f"cannot read the target: {last}", details, run.lease_s
    )


def _release(run: StepRun, status: StepStatus, details: dict[str, Any], action: str) -> None:
    """Give the step up for a later run: a claimed step goes back to ``pending``; an
    ``applying`` one stays so, with its lease ended, so the next run reads back first."""
    if status == StepStatus.CLAIMED:
        run.move(StepStatus.CLAIMED, StepStatus.PENDING, details, action=action)
    else:
        run.move(StepStatus.APPLYING, StepStatus.APPLYING, details, action=action, lease_ended=True)


def _refuse(
    run: StepRun, status: StepStatus, verdict: GuardDecision, details: dict[str, Any]
) -> StepResult:
    run.move(status, StepStatus.REFUSED, details)
    action = "drift" if verdict.action == GuardAction.REFUSE_DRIFT else "guard_refused"
    run.store.audit(
        action, actor=run.actor, plan_id=run.plan_id, queue=run.policy.queue, details=details
    )
    return StepResult(run.step_id, "refused", verdict.reason, details)


def _fail(
    run: StepRun,
    status: StepStatus,
    reason: str,
    details: dict[str, Any],
    *,
    step_to: StepStatus = StepStatus.FAILED,
    audit: str | None = None,
) -> StepResult:
    """A permanent fault: the step fails, its plan fails, its other open steps are
    cancelled (a plan that cannot be carried out is not left half "current"). An approval
    that does not hold is the same, with the step ``refused`` and an ``audit`` row.

    The plan fails before the step is made final: a plan whose steps are all final is taken
    for carried out (``applied``), and would then refuse to fail."""
    store = run.store
    verb = "failed" if step_to == StepStatus.FAILED else "refused"
    with contextlib.suppress(DecisionConflict):  # already failed by another run
        store.transition(
            run.plan_id,
            PlanStatus.FAILED,
            actor=run.actor,
            comment=f"step {run.step_id} {verb}: {reason}",
        )
    run.move(status, step_to, {**details, "reason": reason})
    if audit is not None:
        store.audit(
            audit,
            actor=run.actor,
            plan_id=run.plan_id,
            queue=run.policy.queue,
            details={**details, "reason": reason},
        )
    for st in store.get_plan(run.plan_id).steps:
        if st.status == StepStatus.PENDING:
            store.mark_step(
                st.id,
                StepStatus.CANCELLED,
                actor=run.actor,
                details={"reason": f"plan {run.plan_id} failed at step {run.step_id}"},
            )
    return StepResult(run.step_id, verb, reason, details, plan_failed=True)
