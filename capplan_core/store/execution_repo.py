"""Step outcomes and the audit trail: the execution half of the plan store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from capplan_core.planning.stored_plan import AuditEntry
from capplan_core.store.errors import StoreError
from capplan_core.store.models import (
    AuditEventRow,
    CapacityPlanRow,
    PlanStatus,
    ScalingStepRow,
    StepStatus,
    utcnow,
)
from capplan_core.store.rows import audit_from_row


class ExecutionRepository:
    """Mixed into :class:`capplan_core.store.repo.PlanStore` (shares its session factory)."""

    _session: sessionmaker[Session]

    def session(self) -> Session:
        return self._session()

    def mark_step(
        self, step_id: int, status: StepStatus, *, actor: str, details: dict[str, Any]
    ) -> bool:
        """Record a step's outcome once; returns False if it was already final (never twice)."""
        with self._session.begin() as s:
            step = s.get(ScalingStepRow, step_id, with_for_update=True)
            if step is None:
                raise StoreError(f"no step with id {step_id}")
            if step.status != StepStatus.PENDING:
                return False
            step.status = status
            step.applied_at = utcnow()
            plan = s.get(CapacityPlanRow, step.plan_id)
            if plan is None:
                raise StoreError(f"step {step_id} belongs to no plan")
            s.add(AuditEventRow(actor=actor, action=f"step_{status.value}", plan_id=plan.id,
                                queue=plan.queue, details={"step_id": step_id, **details}))
            if plan.status == PlanStatus.APPROVED and all(
                st.status != StepStatus.PENDING for st in plan.steps
            ):
                plan.status = PlanStatus.APPLIED
            return True

    def last_scale_at(self, queue: str, *, plan_id: int | None = None) -> datetime | None:
        """When capplan last wrote a replica count for ``queue`` (optionally: in one plan)."""
        with self.session() as s:
            q = (select(ScalingStepRow.applied_at)
                 .join(CapacityPlanRow, ScalingStepRow.plan_id == CapacityPlanRow.id)
                 .where(CapacityPlanRow.queue == queue,
                        ScalingStepRow.status == StepStatus.APPLIED))
            if plan_id is not None:
                q = q.where(ScalingStepRow.plan_id == plan_id)
            return s.scalar(q.order_by(ScalingStepRow.applied_at.desc()).limit(1))

    def approval_limits(self, plan_id: int) -> dict[str, Any]:
        """The narrowing limits an approver gave (``max_workers``, ``apply_hours``), if any."""
        for ev in self.audit_events(plan_id=plan_id, action=PlanStatus.APPROVED.value):
            return {k: ev.details.get(k) for k in ("max_workers", "apply_hours")}
        return {}

    # -- audit ----------------------------------------------------------------------------
    def audit(
        self, action: str, *, actor: str, plan_id: int | None = None, queue: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        with self._session.begin() as s:
            s.add(AuditEventRow(actor=actor, action=action, plan_id=plan_id, queue=queue,
                                details=details or {}))

    def audit_events(
        self, *, plan_id: int | None = None, action: str | None = None
    ) -> list[AuditEntry]:
        with self.session() as s:
            q = select(AuditEventRow)
            if plan_id is not None:
                q = q.where(AuditEventRow.plan_id == plan_id)
            if action is not None:
                q = q.where(AuditEventRow.action == action)
            return [audit_from_row(r) for r in s.scalars(q.order_by(AuditEventRow.id))]
