"""Rows to domain objects: the only place the SQLAlchemy adapter's rows are read out."""

from __future__ import annotations

from capplan_adapters.store.models import (
    AuditEventRow,
    CapacityPlanRow,
    ScalingStepRow,
    SimulationResultRow,
)
from capplan_core.planning.stored_plan import (
    AuditEntry,
    StoredPlan,
    StoredSimulation,
    StoredStep,
)


def step_from_row(r: ScalingStepRow) -> StoredStep:
    return StoredStep(
        id=r.id,
        plan_id=r.plan_id,
        seq=r.seq,
        execute_at=r.execute_at,
        from_workers=r.from_workers,
        to_workers=r.to_workers,
        reason=r.reason,
        confidence=r.confidence,
        status=r.status,
        applied_at=r.applied_at,
        explanation=dict(r.explanation or {}),
        claimed_by=r.claimed_by,
        lease_until=r.lease_until,
    )


def simulation_from_row(r: SimulationResultRow) -> StoredSimulation:
    # the column keeps its historical name p95_latency; the domain calls it p95_wait_s
    return StoredSimulation(
        slo_achievement_rate=r.slo_achievement_rate,
        max_backlog=r.max_backlog,
        p95_wait_s=r.p95_latency,
        utilization_range=(r.utilization_range["min"], r.utilization_range["max"]),
        replications=r.replications,
        engine=r.engine,
        details=dict(r.details or {}),
    )


def plan_from_row(r: CapacityPlanRow) -> StoredPlan:
    """The plan with its steps (in order) and simulation; both must be loaded."""
    return StoredPlan(
        id=r.id,
        queue=r.queue,
        mode=r.mode,
        status=r.status,
        current_workers=r.current_workers,
        target_workers=r.target_workers,
        confidence=r.confidence,
        slo_achievable=r.slo_achievable,
        created_at=r.created_at,
        as_of=r.as_of,
        expires_at=r.expires_at,
        flow_run_id=r.flow_run_id,
        decided_by=r.decided_by,
        decided_at=r.decided_at,
        decision_comment=r.decision_comment,
        skipped_reason=r.skipped_reason,
        details=dict(r.details or {}),
        steps=tuple(step_from_row(s) for s in sorted(r.steps, key=lambda s: s.seq)),
        simulation=None if r.simulation is None else simulation_from_row(r.simulation),
    )


def audit_from_row(r: AuditEventRow) -> AuditEntry:
    return AuditEntry(
        id=r.id,
        at=r.at,
        actor=r.actor,
        action=r.action,
        plan_id=r.plan_id,
        queue=r.queue,
        details=dict(r.details or {}),
    )
