"""The plan store: the SQLAlchemy adapter of the ``PlanRepository`` port.

See :class:`capplan_core.planning.repository.PlanRepository`.

Every write is one transaction; a failure leaves the store as it was. Status changes follow the
core's state machine (:data:`~capplan_core.planning.stored_plan.PLAN_TRANSITIONS`), so a plan
is decided once (a second decision raises :class:`DecisionConflict`). Rows never leave this
adapter: reads return the frozen domain objects of :mod:`capplan_core.planning.stored_plan`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from capplan_core.planning.stored_plan import (
    CANCELS_STEPS,
    DECISIONS,
    LIVE,
    PlanDraft,
    StoredPlan,
    check_transition,
)
from capplan_core.policy import ScalingPolicy

if TYPE_CHECKING:
    from capplan_core.planning.repository import PlanRepository
from capplan_core.store.errors import DecisionConflict, StoreError
from capplan_core.store.execution_repo import ExecutionRepository
from capplan_core.store.metrics_repo import MetricsRepository
from capplan_core.store.models import (
    AuditEventRow,
    CapacityPlanRow,
    PlanStatus,
    ScalingPolicyRow,
    ScalingStepRow,
    SimulationResultRow,
    StepStatus,
    utcnow,
)
from capplan_core.store.ops_repo import OpsRepository
from capplan_core.store.rows import plan_from_row

_WITH_CHILDREN = (selectinload(CapacityPlanRow.steps), selectinload(CapacityPlanRow.simulation))


__all__ = ["DecisionConflict", "PlanStore", "StoreError"]


class PlanStore(MetricsRepository, ExecutionRepository, OpsRepository):
    """Repository over one database. Build with :func:`capplan_core.store.db.open_store`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._session = sessionmaker(engine, expire_on_commit=False)

    def session(self) -> Session:
        return self._session()

    # -- policies -------------------------------------------------------------------------
    def upsert_policies(self, policies: Iterable[ScalingPolicy]) -> dict[str, int]:
        """Insert or update policies by name; returns name -> id."""
        ids: dict[str, int] = {}
        with self._session.begin() as s:
            for p in policies:
                spec = p.model_dump(mode="json")
                row = s.scalar(select(ScalingPolicyRow).where(ScalingPolicyRow.name == p.name))
                if row is None:
                    row = ScalingPolicyRow(name=p.name)
                    s.add(row)
                row.enabled = p.enabled
                row.mode = p.mode.value
                row.queue = p.queue
                row.target = spec["target"]
                row.slo_targets = spec["slo"]
                row.scaling_constraints = spec["scaling"]
                row.spec = spec
                s.flush()
                ids[p.name] = row.id
        return ids

    def get_policy(self, name: str) -> ScalingPolicy:
        with self.session() as s:
            row = s.scalar(select(ScalingPolicyRow).where(ScalingPolicyRow.name == name))
            if row is None:
                raise StoreError(f"no policy named {name!r}")
            return ScalingPolicy.model_validate(row.spec)

    # -- plans ----------------------------------------------------------------------------
    def create_plan(self, rec: PlanDraft) -> int:
        """Store a plan with its steps and simulation result; returns the plan id."""
        with self._session.begin() as s:
            pol = s.scalar(select(ScalingPolicyRow).where(ScalingPolicyRow.name == rec.policy_name))
            if pol is None:
                raise StoreError(f"no policy named {rec.policy_name!r}; upsert policies first")
            status = PlanStatus.SKIPPED if rec.skipped_reason else PlanStatus.PROPOSED
            plan = CapacityPlanRow(
                policy_id=pol.id, queue=rec.queue, mode=rec.mode,
                current_workers=rec.current_workers, target_workers=rec.target_workers,
                confidence=rec.confidence, slo_achievable=rec.slo_achievable, status=status,
                as_of=rec.as_of, expires_at=rec.expires_at, flow_run_id=rec.flow_run_id,
                skipped_reason=rec.skipped_reason, details=rec.details,
            )
            for i, st in enumerate(rec.steps):
                plan.steps.append(
                    ScalingStepRow(
                        seq=i, execute_at=st.execute_at, from_workers=st.from_workers,
                        to_workers=st.to_workers, reason=st.reason, confidence=st.confidence,
                        explanation=st.explanation,
                    )
                )
            if rec.simulation is not None:
                sim = rec.simulation
                plan.simulation = SimulationResultRow(
                    slo_achievement_rate=sim.slo_achievement_rate, max_backlog=sim.max_backlog,
                    p95_latency=sim.p95_wait_s,
                    utilization_range={"min": sim.utilization_range[0],
                                       "max": sim.utilization_range[1]},
                    replications=sim.replications, engine=sim.engine, details=sim.details,
                )
            s.add(plan)
            s.flush()
            return plan.id

    def get_plan(self, plan_id: int) -> StoredPlan:
        with self.session() as s:
            plan = s.scalar(
                select(CapacityPlanRow).where(CapacityPlanRow.id == plan_id)
                .options(*_WITH_CHILDREN)
            )
            if plan is None:
                raise StoreError(f"no plan with id {plan_id}")
            return plan_from_row(plan)

    def list_plans(
        self, *, queue: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[StoredPlan]:
        with self.session() as s:
            q = select(CapacityPlanRow).options(*_WITH_CHILDREN)
            if queue:
                q = q.where(CapacityPlanRow.queue == queue)
            if status:
                q = q.where(CapacityPlanRow.status == status)
            return [plan_from_row(p)
                    for p in s.scalars(q.order_by(CapacityPlanRow.id.desc()).limit(limit))]

    def set_flow_run(self, plan_id: int, flow_run_id: str,
                     approval_deadline: datetime | None = None) -> None:
        """Link the plan to the run deciding it (and when an undecided plan expires)."""
        with self._session.begin() as s:
            plan = s.get(CapacityPlanRow, plan_id)
            if plan is None:
                raise StoreError(f"no plan with id {plan_id}")
            plan.flow_run_id = flow_run_id
            if approval_deadline is not None:
                plan.details = {**plan.details,
                                "approval_deadline": approval_deadline.isoformat()}

    def transition(
        self, plan_id: int, to: PlanStatus, *, actor: str, comment: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> StoredPlan:
        """Move a plan to a new status, audited. Approve/reject/expire are decisions, made once.

        The check and the write happen in one transaction with a row lock (PostgreSQL), so two
        approvers racing cannot both win.
        """
        with self._session.begin() as s:
            plan = s.scalar(
                select(CapacityPlanRow).where(CapacityPlanRow.id == plan_id).with_for_update()
            )
            if plan is None:
                raise StoreError(f"no plan with id {plan_id}")
            check_transition(plan_id, plan.status, plan.decided_by, to)
            plan.status = to
            if to in DECISIONS:
                plan.decided_by, plan.decided_at, plan.decision_comment = actor, utcnow(), comment
            if to in CANCELS_STEPS:
                for st in plan.steps:
                    if st.status == StepStatus.PENDING:
                        st.status = StepStatus.CANCELLED
            if to == PlanStatus.APPROVED:
                # a newer approved plan supersedes the older live plans of the same queue
                for old in s.scalars(
                    select(CapacityPlanRow).where(
                        CapacityPlanRow.queue == plan.queue,
                        CapacityPlanRow.id != plan.id,
                        CapacityPlanRow.status.in_(LIVE),
                    )
                ):
                    old.status = PlanStatus.SUPERSEDED
                    for st in old.steps:
                        if st.status == StepStatus.PENDING:
                            st.status = StepStatus.CANCELLED
                    s.add(AuditEventRow(actor="capplan", action="superseded", plan_id=old.id,
                                        queue=old.queue, details={"by_plan": plan.id}))
            s.add(AuditEventRow(actor=actor, action=to.value, plan_id=plan.id, queue=plan.queue,
                                details={"comment": comment, **(details or {})}))
            s.flush()
            return plan_from_row(plan)

    def plan_for_flow_run(self, flow_run_id: str) -> StoredPlan | None:
        """The plan a (child) flow run made; a resumed, suspended run finds its plan here."""
        with self.session() as s:
            row = s.scalar(select(CapacityPlanRow)
                           .where(CapacityPlanRow.flow_run_id == flow_run_id)
                           .options(*_WITH_CHILDREN)
                           .order_by(CapacityPlanRow.id.desc()).limit(1))
            return None if row is None else plan_from_row(row)

    def expire_undecided(self, now: datetime, *, actor: str = "capplan") -> list[int]:
        """Expire proposed manual plans whose approval window has passed (audited).

        A suspended run releases its process, so nothing waits on its timeout: this sweep
        (run at the start of every capacity-plan cycle) is what expires such plans.
        """
        expired = []
        for plan in self.list_plans(status=PlanStatus.PROPOSED, limit=1000):
            deadline = plan.details.get("approval_deadline")
            if deadline and datetime.fromisoformat(deadline) <= now:
                try:
                    self.transition(plan.id, PlanStatus.EXPIRED, actor=actor,
                                    comment="no decision before the approval deadline")
                except DecisionConflict:
                    continue
                expired.append(plan.id)
        return expired

    def current_plan(self, queue: str) -> StoredPlan | None:
        """The live (approved or applied) plan of a queue, if any."""
        with self.session() as s:
            row = s.scalar(
                select(CapacityPlanRow)
                .where(CapacityPlanRow.queue == queue, CapacityPlanRow.status.in_(LIVE))
                .options(*_WITH_CHILDREN)
                .order_by(CapacityPlanRow.id.desc()).limit(1)
            )
            return None if row is None else plan_from_row(row)


if TYPE_CHECKING:  # mypy checks the adapter against the port
    _port: type[PlanRepository] = PlanStore
