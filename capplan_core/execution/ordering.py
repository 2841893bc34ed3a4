"""Order and staleness of a plan's steps. Pure, no I/O.

* **Order:** a step is not applied while an earlier step of its plan is still open
  (``pending``, ``claimed`` or ``applying``): the later step's ``from_workers`` assumes the
  earlier one happened.
* **Shift:** a step applied late (a cooldown deferral, a slow run) shifts every later step's
  effective time by its lateness, so the plan keeps its spacing and a deferral never turns the
  later steps into drift.
* **Staleness:** a step is stale — ``expired``, never applied late — when its plan's
  ``expires_at`` has passed, or when ``now`` is one planning window (the policy's
  ``forecast.interval_minutes``) or more past its effective time: the window it was sized for
  is over, and the next plan owns the queue.
* **Replays:** a plan made as of a time more than :data:`REPLAY_AFTER` before it was stored
  (``capplan demo``, a backtest replay) runs on its own clock: wall time minus that gap, so
  its steps come due and go stale as they would have then. Live plans run on the wall clock.
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

#: A plan whose ``as_of`` is this much older than its ``created_at`` is a replay.
REPLAY_AFTER = timedelta(hours=1)
#: Steps ``apply-due`` looks at: open ones (a claimed/applying one may have a dead owner).
OPEN_STATUSES = frozenset({StepStatus.PENDING}) | STEP_LEASED


def replay_offset(plan: StoredPlan) -> timedelta:
    """How far the plan's clock runs behind the wall clock: ``created_at - as_of`` for a
    replay (see the module doc), else zero."""
    if plan.as_of is None:
        return timedelta(0)
    gap = utc_datetime(plan.created_at) - utc_datetime(plan.as_of)
    return gap if gap > REPLAY_AFTER else timedelta(0)


def effective_execute_at(steps: Sequence[StoredStep], step_id: int,
                         offset: timedelta = timedelta(0)) -> datetime:
    """``execute_at`` of ``step_id`` shifted by how late the steps before it were done
    (``applied_at`` is wall time; ``offset`` turns it into the plan's time).

    The shift is carried from step to step: if step k was done ``d`` after its effective
    time, steps k+1, k+2, ... move by ``d`` too. Raises ``ValueError`` for an unknown step.
    """
    shift = timedelta(0)
    for st in sorted(steps, key=lambda s: s.seq):
        effective = utc_datetime(st.execute_at) + shift
        if st.id == step_id:
            return effective
        if st.status in (StepStatus.APPLIED, StepStatus.NOOP) and st.applied_at is not None:
            late = utc_datetime(st.applied_at) - offset - effective
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


def stale_reason(plan: StoredPlan, step: StoredStep, now: datetime,
                 window_s: float) -> str | None:
    """Why ``step`` must not be applied any more (it becomes ``expired``), or None.
    ``now`` is wall time."""
    offset = replay_offset(plan)
    now = utc_datetime(now) - offset
    if plan.status in (PlanStatus.SUPERSEDED, PlanStatus.EXPIRED):
        return f"plan {plan.id} is {plan.status}"
    if plan.expires_at is not None and utc_datetime(plan.expires_at) < now:
        return f"plan {plan.id} expired at {plan.expires_at.isoformat()}"
    effective = effective_execute_at(plan.steps, step.id, offset)
    if now >= effective + timedelta(seconds=window_s):
        return (f"its window passed: due at {effective.isoformat()}, one planning window "
                f"({window_s:.0f} s) ago or more")
    return None


def due_steps(plans: Iterable[StoredPlan], now: datetime) -> list[tuple[int, int]]:
    """(plan id, step id) of every open step of an approved plan whose time has come (on the
    plan's clock), in plan and step order (claimed/applying ones too: their owner may be
    dead)."""
    out = []
    for plan in plans:
        if plan.status != PlanStatus.APPROVED:
            continue
        offset = replay_offset(plan)
        plan_now = utc_datetime(now) - offset
        out += [(plan.id, st.id) for st in sorted(plan.steps, key=lambda s: s.seq)
                if st.status in OPEN_STATUSES
                and effective_execute_at(plan.steps, st.id, offset) <= plan_now]
    return out
