"""Rows to domain objects: the only place the SQLAlchemy adapter's rows are read out.

A row is an ORM model's object or a Core result row of :mod:`capplan_adapters.store.tables`
(the lean read path): both have the columns as attributes, and both are read here alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from capplan_core.planning.policy_versions import PolicyVersion, document_digest
from capplan_core.planning.stored_plan import (
    AuditEntry,
    StoredPlan,
    StoredSimulation,
    StoredStep,
)
from capplan_core.policy import ScalingPolicy

if TYPE_CHECKING:  # the ORM loads only where the models are used, not for a lean read
    from sqlalchemy import Row

    from capplan_adapters.store.models import (
        AuditEventRow,
        CapacityPlanRow,
        PolicyVersionRow,
        ScalingStepRow,
        SimulationResultRow,
    )


def step_from_row(r: ScalingStepRow | Row[Any]) -> StoredStep:
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


def simulation_from_row(r: SimulationResultRow | Row[Any]) -> StoredSimulation:
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
    return plan_from_parts(r, r.steps, r.simulation)


def plan_from_parts(
    r: CapacityPlanRow | Row[Any],
    steps: Iterable[ScalingStepRow | Row[Any]],
    simulation: SimulationResultRow | Row[Any] | None,
) -> StoredPlan:
    """The plan of row ``r`` with its step rows (any order) and simulation row (or None)."""
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
        steps=tuple(step_from_row(s) for s in sorted(steps, key=lambda s: s.seq)),
        simulation=None if simulation is None else simulation_from_row(simulation),
    )


def audit_from_row(r: AuditEventRow | Row[Any]) -> AuditEntry:
    return AuditEntry(
        id=r.id,
        at=r.at,
        actor=r.actor,
        action=r.action,
        plan_id=r.plan_id,
        queue=r.queue,
        details=dict(r.details or {}),
    )


def policy_version_from_row(row: PolicyVersionRow | Row[Any]) -> PolicyVersion:
    policy = ScalingPolicy.model_validate(row.spec)
    return PolicyVersion(
        name=row.name,
        version=row.version,
        policy=policy,
        sha256=row.sha256 or document_digest(row.spec),
        applied_by=row.applied_by,
        applied_at=row.applied_at,
        comment=row.comment or "",
        pending=bool(row.pending),
        approved_by=row.approved_by,
        approval=row.approval,
        approved_at=row.approved_at,
        document_sha256=document_digest(row.spec),
    )
