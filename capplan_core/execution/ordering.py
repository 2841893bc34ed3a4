"""Order and staleness of a plan's steps. Pure, no I/O.

* **Order:** a step is not applied while an earlier step of its plan is still open
  (``pending``, ``claimed`` or ``applying``): the later step's ``from_workers`` assumes the
  earlier one happened.
* **Due:** a step is due at its own ``execute_at`` (which includes a scale-up's startup lead)
  and never applied before it; the steps before it must be done first, and the cooldown guard
  keeps actions apart.
* **Shift:** a step applied late (a cooldown deferral, a slow run) shifts every later step's
  effective time by its lateness for staleness: a late chain does not expire its later steps.
* **Staleness:** a step is stale — ``expired``, never applied late — when its plan's
  ``expires_at`` has passed, or when ``now`` is one planning window (the policy's
  ``forecast.interval_minutes``) or more past its effective time: the window it was sized for
  is over, and the next plan owns the queue.
* **One clock:** ``now`` is the store's clock (``PlanRepository.now``). A saved plan is made
  at the wall clock (a run that saves plans refuses ``as_of``), so there is no replay clock:
  a plan found days after it was made has expired, whatever time it was made "as of".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from capplan_core.planning.stored_plan import (
    STEP_FINAL,
    STEP_LEASED,
    PlanStatus,
    StepStatus,
    StoredPlan,
    StoredStep,
)
from capplan_core.utc import utc_datetime

#: how the reason of a step expired because its window passed begins (the sweeper re-plans
#: the queue of such a step)
WINDOW_PASSED = "its window passed"

#: Steps ``apply-due`` looks at: open ones (a claimed/applying one may have a dead owner).
OPEN_STATUSES = frozenset({StepStatus.PENDING}) | STEP_LEASED


def effective_execute_at(steps: Sequence[StoredStep], step_id: int) -> datetime:
    """``execute_at`` of ``step_id`` shifted by how late the steps before it were done.

    The shift is carried from step to step: if step k was done ``d`` after its effective
    time, steps k+1, k+2, ... move by ``d`` too. Raises ``ValueError`` for an unknown step.
    """
    shift = timedelta(0)
    for st in sorted(steps, key=lambda s: s.seq):
        effective = utc_datetime(st.execute_at) + shift
        if st.id == step_id:
            return effective
        if st.status in (StepStatus.APPLIED, StepStatus.NOOP) and st.applied_at is not None:
            late = utc_datetime(st.applied_at) - effective
            if late > timedelta(0):
                shift += late
    raise ValueError(f"no step {step_id} in this plan")


def blocking_step(steps: Sequence[StoredStep], step_id: int) -> StoredStep | None:
    """The first earlier step of the plan that is still open, if any."""
    for st in sorted(steps, key=lambda s: s.seq):
        if st.id == step_id:
            return None
        if st.status not in STEP_FINAL:
            return st
    return None


def stale_reason(plan: StoredPlan, step: StoredStep, now: datetime, window_s: float) -> str | None:
    """Why ``step`` must not be applied any more (it becomes ``expired``), or None.
    ``now`` is the store's clock."""
    now = utc_datetime(now)
    if plan.status in (PlanStatus.SUPERSEDED, PlanStatus.EXPIRED):
        return f"plan {plan.id} is {plan.status}"
    if plan.expires_at is not None and utc_datetime(plan.expires_at) < now:
        return f"plan {plan.id} expired at {plan.expires_at.isoformat()}"
    effective = effective_execute_at(plan.steps, step.id)
    if now >= effective + timedelta(seconds=window_s):
        return (
            f"{WINDOW_PASSED}: due at {effective.isoformat()}, one planning window "
            f"({window_s:.0f} s) ago or more"
        )
    return None


def due_steps(plans: Iterable[StoredPlan], now: datetime) -> list[tuple[int, int]]:
    """(plan id, step id) of every open step of an approved plan whose time (its own
    ``execute_at``) has come on the store's clock, in plan and step order (claimed/applying
    ones too: their owner may be dead)."""
    out = []
    for plan in plans:
        if plan.status != PlanStatus.APPROVED:
            continue
        out += [
            (plan.id, st.id)
            for st in sorted(plan.steps, key=lambda s: s.seq)
            if st.status in OPEN_STATUSES and utc_datetime(st.execute_at) <= utc_datetime(now)
        ]
    return out


#: Plans whose leased steps the sweeper resolves: a run died holding one of their steps after
#: the plan stopped being live (superseded, failed, expired, ...).
RESOLVE_STATUSES = (
    PlanStatus.SUPERSEDED,
    PlanStatus.FAILED,
    PlanStatus.EXPIRED,
    PlanStatus.APPLIED,
)


def stranded_steps(plans: Iterable[StoredPlan], now: datetime) -> list[tuple[int, int]]:
    """(plan id, step id) of the claimed or applying steps, whose lease has run out, of plans
    that are no longer approved: a run died holding them. They are never applied; the
    sweeper takes them over to read the target back and close them (applied if the dead
    run's write landed, else expired or cancelled), so no step is left in doubt."""
    out = []
    for plan in plans:
        if plan.status == PlanStatus.APPROVED:
            continue
        out += [
            (plan.id, st.id)
            for st in sorted(plan.steps, key=lambda s: s.seq)
            if st.status in STEP_LEASED
            and st.lease_until is not None
            and utc_datetime(st.lease_until) < utc_datetime(now)
        ]
    return out
