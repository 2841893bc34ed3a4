"""Plans as the repository stores and returns them: frozen domain objects, never rows.

Drafts (:class:`PlanDraft`, :class:`StepDraft`, :class:`SimulationDraft`) go in;
:class:`StoredPlan` (with its :class:`StoredStep` s and :class:`StoredSimulation`),
:class:`AuditEntry` and :class:`ForecastPoint` come out. The plan's state machine is
:data:`PLAN_TRANSITIONS`; every store applies it through :func:`check_transition`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from capplan_core.approval.refusals import already_decided, cap_refusal, stale_plan_problem
from capplan_core.planning.errors import CapRefused, DecisionConflict, StalePlan


class PlanStatus(StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    APPLIED = "applied"
    SUPERSEDED = "superseded"
    FAILED = "failed"
    SKIPPED = "skipped"
    HELD = "held"  # nobody can approve it: the pool is held at its count
    CANCELLED = "cancelled"  # its approval run was cancelled in Prefect


class StepStatus(StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    APPLYING = "applying"
    APPLIED = "applied"
    NOOP = "noop"
    REFUSED = "refused"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


#: A step's life (docs/reliability.md). ``claimed`` and ``applying`` carry a lease
#: (``claimed_by``, ``lease_until``); a run may take over a step whose lease has run out
#: (``claimed -> claimed``, ``applying -> applying``), reading the live count back first.
#: ``claimed -> pending`` releases a step a run will not apply now (cooldown, busy target).
STEP_TRANSITIONS: dict[str, frozenset[str]] = {
    StepStatus.PENDING: frozenset({StepStatus.CLAIMED, StepStatus.CANCELLED, StepStatus.EXPIRED}),
    StepStatus.CLAIMED: frozenset(
        {
            StepStatus.CLAIMED,
            StepStatus.PENDING,
            StepStatus.APPLYING,
            StepStatus.NOOP,
            StepStatus.REFUSED,
            StepStatus.CANCELLED,
            StepStatus.EXPIRED,
            StepStatus.FAILED,
        }
    ),
    StepStatus.APPLYING: frozenset(
        {
            StepStatus.APPLYING,
            StepStatus.APPLIED,
            StepStatus.FAILED,
            StepStatus.REFUSED,
            StepStatus.EXPIRED,
            StepStatus.CANCELLED,
        }
    ),
}
#: Statuses a step never leaves.
STEP_FINAL = frozenset(
    {
        StepStatus.APPLIED,
        StepStatus.NOOP,
        StepStatus.REFUSED,
        StepStatus.FAILED,
        StepStatus.CANCELLED,
        StepStatus.EXPIRED,
    }
)
#: Statuses that hold a lease.
STEP_LEASED = frozenset({StepStatus.CLAIMED, StepStatus.APPLYING})


def _allowed(transitions: dict[str, frozenset[str]], status: str, to: str) -> bool:
    """True when ``transitions`` lets something in ``status`` move to ``to``."""
    return to in transitions.get(status, frozenset())


def step_may_move(status: str, to: StepStatus) -> bool:
    """True when :data:`STEP_TRANSITIONS` lets a step in ``status`` move to ``to``."""
    return _allowed(STEP_TRANSITIONS, status, to)


# Which statuses a plan may move to from each status.
PLAN_TRANSITIONS: dict[str, frozenset[str]] = {
    PlanStatus.PROPOSED: frozenset(
        {
            PlanStatus.APPROVED,
            PlanStatus.REJECTED,
            PlanStatus.EXPIRED,
            PlanStatus.SUPERSEDED,
            PlanStatus.FAILED,
            PlanStatus.HELD,
            PlanStatus.CANCELLED,
        }
    ),
    PlanStatus.APPROVED: frozenset({PlanStatus.APPLIED, PlanStatus.SUPERSEDED, PlanStatus.FAILED}),
    PlanStatus.APPLIED: frozenset({PlanStatus.SUPERSEDED}),
}
# Statuses that are a person's (or the policy's) decision on a plan, made once.
DECISIONS = frozenset(
    {
        PlanStatus.APPROVED,
        PlanStatus.REJECTED,
        PlanStatus.EXPIRED,
        PlanStatus.HELD,
        PlanStatus.CANCELLED,
    }
)
# Statuses that cancel a plan's pending steps.
CANCELS_STEPS = frozenset(
    {
        PlanStatus.REJECTED,
        PlanStatus.EXPIRED,
        PlanStatus.SUPERSEDED,
        PlanStatus.HELD,
        PlanStatus.CANCELLED,
    }
)
# A queue's live plans: at most one at a time, enforced by the partial unique index
# ``uq_plan_live_per_queue`` (migration 0003). A plan whose steps are being applied stays
# ``approved`` until none is pending (there is no separate applying/partially-applied plan
# status), so plans in flight are covered too.
LIVE = (PlanStatus.APPROVED, PlanStatus.APPLIED)


def check_transition(plan_id: int, status: str, decided_by: str | None, to: PlanStatus) -> None:
    """Raise :class:`DecisionConflict` unless a plan in ``status`` may move to ``to``."""
    if not _allowed(PLAN_TRANSITIONS, status, to):
        raise DecisionConflict(
            f"{already_decided(plan_id, status, decided_by)}; cannot mark it {to.value}"
        )


def check_approvable(
    plan_id: int,
    queue: str,
    current_workers: int | None,
    cap: int | None,
    newer: tuple[int, str] | None,
) -> None:
    """Raise unless a plan may be approved now.

    ``newer`` is the (id, status) of a newer plan of the same queue, if any: approving a plan
    that is not its queue's newest raises :class:`StalePlan`. An approver's ``cap`` (workers)
    below the current count or at 0 raises :class:`CapRefused`. The wording is
    :mod:`capplan_core.approval.refusals`'.
    """
    stale = stale_plan_problem(plan_id, queue, newer)
    if stale is not None:
        raise StalePlan(stale)
    refused = cap_refusal(plan_id, cap, current_workers)
    if refused is not None:
        raise CapRefused(refused)


@dataclass(frozen=True)
class StepDraft:
    execute_at: datetime
    from_workers: int
    to_workers: int
    reason: str
    confidence: float | None = None
    explanation: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SimulationFigures:
    """A plan's simulated outcome: the fields a draft and a stored simulation share."""

    slo_achievement_rate: float
    max_backlog: float
    p95_wait_s: float
    utilization_range: tuple[float, float]
    replications: int
    engine: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SimulationDraft(SimulationFigures):
    """A plan's simulation as :meth:`PlanRepository.create_plan` takes it."""


@dataclass(frozen=True)
class QualityDraft:
    """The data-quality report stored with a plan (same transaction)."""

    queue: str
    passed: bool
    report: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PlanDraft:
    """A new plan, its steps and its simulation, as :meth:`PlanRepository.create_plan` takes."""

    policy_name: str
    queue: str
    mode: str
    current_workers: int | None
    target_workers: int | None
    confidence: float | None
    slo_achievable: bool | None
    as_of: datetime | None
    expires_at: datetime | None = None
    steps: Sequence[StepDraft] = ()
    simulation: SimulationDraft | None = None
    skipped_reason: str | None = None
    flow_run_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # stored in the plan's transaction; (flow_run_id, queue) makes a retried store idempotent
    forecast: Sequence[ForecastPoint] = ()
    quality: QualityDraft | None = None


@dataclass(frozen=True)
class StoredStep:
    id: int
    plan_id: int
    seq: int
    execute_at: datetime
    from_workers: int
    to_workers: int
    reason: str
    confidence: float | None
    status: str
    applied_at: datetime | None
    explanation: dict[str, Any] = field(default_factory=dict)
    claimed_by: str | None = None
    lease_until: datetime | None = None


@dataclass(frozen=True)
class StepClaim:
    """A step a run now holds (``claimed`` or, taken over, ``applying``) until ``lease_until``.

    ``taken_over_from`` names the run whose lease had run out; ``was`` is the status the step
    had before (``applying`` means the dead run may have written: read back before writing).
    """

    step: StoredStep
    run_id: str
    lease_until: datetime
    was: str
    taken_over_from: str | None = None


@dataclass(frozen=True)
class StoredSimulation(SimulationFigures):
    """A plan's simulation as the repository returns it."""


@dataclass(frozen=True)
class StoredPlan:
    id: int
    queue: str
    mode: str
    status: str
    current_workers: int | None
    target_workers: int | None
    confidence: float | None
    slo_achievable: bool | None
    created_at: datetime
    as_of: datetime | None
    expires_at: datetime | None
    flow_run_id: str | None
    decided_by: str | None
    decided_at: datetime | None
    decision_comment: str | None
    skipped_reason: str | None
    details: dict[str, Any] = field(default_factory=dict)
    steps: tuple[StoredStep, ...] = ()
    simulation: StoredSimulation | None = None

    @property
    def policy_name(self) -> str | None:
        name = self.details.get("policy")
        return None if name is None else str(name)


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    plan_id: int | None
    queue: str | None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ForecastPoint:
    """One stored forecast window: mean rate and the band at ``level`` (jobs/s)."""

    queue_name: str
    forecast_time: datetime
    predicted_rate: float
    confidence_lower: float
    confidence_upper: float
    level: float
    model: str


def as_stored(
    draft: PlanDraft, *, plan_id: int, first_step_id: int, created_at: datetime
) -> StoredPlan:
    """The plan ``draft`` becomes when a store keeps it: ``proposed`` (``skipped`` with a
    reason), its steps ``pending`` and numbered in order. The in-memory store keeps exactly
    this; a preview shows it without storing anything."""
    steps = tuple(
        StoredStep(
            id=first_step_id + i,
            plan_id=plan_id,
            seq=i,
            execute_at=st.execute_at,
            from_workers=st.from_workers,
            to_workers=st.to_workers,
            reason=st.reason,
            confidence=st.confidence,
            status=StepStatus.PENDING,
            applied_at=None,
            explanation=dict(st.explanation),
        )
        for i, st in enumerate(draft.steps)
    )
    sim = draft.simulation
    return StoredPlan(
        id=plan_id,
        queue=draft.queue,
        mode=draft.mode,
        status=PlanStatus.SKIPPED if draft.skipped_reason else PlanStatus.PROPOSED,
        current_workers=draft.current_workers,
        target_workers=draft.target_workers,
        confidence=draft.confidence,
        slo_achievable=draft.slo_achievable,
        created_at=created_at,
        as_of=draft.as_of,
        expires_at=draft.expires_at,
        flow_run_id=draft.flow_run_id,
        decided_by=None,
        decided_at=None,
        decision_comment=None,
        skipped_reason=draft.skipped_reason,
        details=dict(draft.details),
        steps=steps,
        simulation=None
        if sim is None
        else StoredSimulation(
            sim.slo_achievement_rate,
            sim.max_backlog,
            sim.p95_wait_s,
            sim.utilization_range,
            sim.replications,
            sim.engine,
            dict(sim.details),
        ),
    )
