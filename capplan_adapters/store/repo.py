"""The plan store: the SQLAlchemy adapter of the ``PlanRepository`` port.

See :class:`capplan_core.planning.repository.PlanRepository`.

Every write is one transaction; a failure leaves the store as it was. Status changes follow the
core's state machine (:data:`~capplan_core.planning.stored_plan.PLAN_TRANSITIONS`), so a plan
is decided once (a second decision raises :class:`DecisionConflict`). Rows never leave this
adapter: reads return the frozen domain objects of :mod:`capplan_core.planning.stored_plan`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from capplan_core.planning import plan_rules as rules
from capplan_core.planning.expiry import expire_overdue_plans
from capplan_core.planning.stored_plan import (
    LIVE,
    PlanDraft,
    StoredPlan,
)
from capplan_core.policy import ScalingPolicy

if TYPE_CHECKING:
    from capplan_core.planning.repository import PlanRepository
from capplan_adapters.store.execution_repo import ExecutionRepository
from capplan_adapters.store.key_repo import KeyRepository
from capplan_adapters.store.metrics_repo import MetricsRepository
from capplan_adapters.store.models import (
    CapacityPlanRow,
    PlanStatus,
    ScalingPolicyRow,
)
from capplan_adapters.store.ops_repo import OpsRepository
from capplan_adapters.store.plan_writes import (
    apply_update,
    insert_plan,
    newer_plan_row,
    plan_facts,
    supersede_live,
    supersede_outdated,
    supersede_proposed,
)
from capplan_adapters.store.policy_repo import PolicyRepository
from capplan_adapters.store.retention_repo import RetentionRepository
from capplan_adapters.store.rows import plan_from_row
from capplan_core.planning.errors import CapRefused, DecisionConflict, StalePlan, StoreError

_WITH_CHILDREN = (selectinload(CapacityPlanRow.steps), selectinload(CapacityPlanRow.simulation))


__all__ = ["CapRefused", "DecisionConflict", "PlanStore", "StalePlan", "StoreError"]


class PlanStore(
    PolicyRepository,
    MetricsRepository,
    ExecutionRepository,
    OpsRepository,
    RetentionRepository,
    KeyRepository,
):
    """Repository over one database. Build with :func:`capplan_adapters.store.db.open_store`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._session = sessionmaker(engine, expire_on_commit=False)

    def session(self) -> Session:
        return self._session()

    # -- plans ----------------------------------------------------------------------------
    def create_plan(self, rec: PlanDraft) -> int:
        """Store a plan with its steps, simulation, forecast points and quality report in one
        transaction; returns the plan id.

        Idempotent per (``flow_run_id``, queue): storing the same run's plan again (a retried
        task) returns the id stored first and writes nothing. A new proposed plan supersedes
        its queue's older proposed plans (audited).
        """
        if rec.flow_run_id is not None:
            found = self._plan_id_for(rec.flow_run_id, rec.queue)
            if found is not None:
                return found
        try:
            with self._session.begin() as s:
                pol = s.scalar(
                    select(ScalingPolicyRow).where(ScalingPolicyRow.name == rec.policy_name)
                )
                if pol is None:
                    raise StoreError(
                        f"no policy named {rec.policy_name!r}; apply it first "
                        "(capplan policies apply FILE)"
                    )
                plan = insert_plan(s, rec, pol.id)
                made_under = rules.outdated(
                    rec.details.get("policy_version"),
                    pol.version,
                    plan.status != PlanStatus.PROPOSED,
                )
                if made_under is not None:
                    supersede_outdated(s, plan, made_under, pol.version)
                elif plan.status == PlanStatus.PROPOSED:
                    supersede_proposed(s, plan)
                return plan.id
        except IntegrityError:
            # a concurrent retry of the same run stored it first: return that plan
            found = (
                None if rec.flow_run_id is None else self._plan_id_for(rec.flow_run_id, rec.queue)
            )
            if found is None:
                raise
            return found

    def _plan_id_for(self, flow_run_id: str, queue: str) -> int | None:
        with self.session() as s:
            return s.scalar(
                select(CapacityPlanRow.id).where(
                    CapacityPlanRow.flow_run_id == flow_run_id, CapacityPlanRow.queue == queue
                )
            )

    def newer_plan(self, plan_id: int) -> StoredPlan | None:
        """The newest plan of the same queue made after ``plan_id`` (skipped ones aside)."""
        with self.session() as s:
            plan = s.get(CapacityPlanRow, plan_id)
            if plan is None:
                raise StoreError(f"no plan with id {plan_id}")
            row = newer_plan_row(s, plan)
            return None if row is None else plan_from_row(row)

    def set_flow_run(
        self, plan_id: int, flow_run_id: str, approval_deadline: datetime | None = None
    ) -> None:
        """Link the plan to the run deciding it (and when an undecided plan expires)."""
        with self._session.begin() as s:
            plan = s.get(CapacityPlanRow, plan_id)
            if plan is None:
                raise StoreError(f"no plan with id {plan_id}")
            plan.flow_run_id = flow_run_id
            if approval_deadline is not None:
                plan.details = {**plan.details, "approval_deadline": approval_deadline.isoformat()}

    def transition(
        self,
        plan_id: int,
        to: PlanStatus,
        *,
        actor: str,
        comment: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> StoredPlan:
        """Move a plan to a new status, audited. Approve/reject/expire are decisions, made once.

        The check and the write are one transaction under a lock (``FOR UPDATE`` on
        PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so of approvers racing exactly one wins;
        the others get :class:`DecisionConflict`. Approving raises :class:`StalePlan` when a
        newer plan of the queue exists, and :class:`CapRefused` for a refused
        ``details["max_workers"]``; an allowed cap clips the steps (later steps start from the
        capped counts). Approving supersedes the queue's other live plans.
        """
        try:
            with self._session.begin() as s:
                plan = s.scalar(
                    select(CapacityPlanRow).where(CapacityPlanRow.id == plan_id).with_for_update()
                )
                if plan is None:
                    raise StoreError(f"no plan with id {plan_id}")
                newer = newer_plan_row(s, plan) if to == PlanStatus.APPROVED else None
                change = rules.transition(
                    plan_facts(plan),
                    to,
                    actor=actor,
                    comment=comment,
                    details=details,
                    newer=None if newer is None else (newer.id, newer.status),
                )
                if to == PlanStatus.APPROVED:
                    supersede_live(s, plan)
                apply_update(s, plan, change)
                s.flush()
                return plan_from_row(plan)
        except IntegrityError as err:
            # the partial unique index: another plan of the queue went live at the same time
            raise DecisionConflict(
                f"plan {plan_id}: another plan of its queue became live "
                f"at the same time ({err.orig})"
            ) from err

    def policy_for_plan(self, plan: StoredPlan) -> ScalingPolicy:
        """The policy version ``plan`` was made under (its steps execute under it); a plan
        stored before versions existed (migration 0005) uses version 1."""
        name = plan.policy_name
        if name is None:
            raise StoreError(f"plan {plan.id} names no policy")
        return self.policy_version(name, int(plan.details.get("policy_version") or 1)).policy

    def plan_for_flow_run(self, flow_run_id: str) -> StoredPlan | None:
        """The plan a (child) flow run made; a resumed, suspended run finds its plan here."""
        with self.session() as s:
            row = s.scalar(
                select(CapacityPlanRow)
                .where(CapacityPlanRow.flow_run_id == flow_run_id)
                .options(*_WITH_CHILDREN)
                .order_by(CapacityPlanRow.id.desc())
                .limit(1)
            )
            return None if row is None else plan_from_row(row)

    def expire_undecided(self, now: datetime, *, actor: str = "capplan") -> list[int]:
        """Expire proposed manual plans whose approval window has passed (audited).

        A suspended run releases its process, so nothing waits on its timeout: this sweep
        (run at the start of every capacity-plan cycle) is what expires such plans.
        """
        return expire_overdue_plans(self, now, actor=actor)

    def current_plan(self, queue: str) -> StoredPlan | None:
        """The live (approved or applied) plan of a queue, if any."""
        with self.session() as s:
            row = s.scalar(
                select(CapacityPlanRow)
                .where(CapacityPlanRow.queue == queue, CapacityPlanRow.status.in_(LIVE))
                .options(*_WITH_CHILDREN)
                .order_by(CapacityPlanRow.id.desc())
                .limit(1)
            )
            return None if row is None else plan_from_row(row)


if TYPE_CHECKING:  # mypy checks the adapter against the port
    _port: type[PlanRepository] = PlanStore
