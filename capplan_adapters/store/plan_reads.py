"""The plan store's reads of plans, their audit and the current policies, in SQLAlchemy Core.

:class:`PlanReader` is the read half :class:`~capplan_adapters.store.repo.PlanStore` inherits,
and on its own the lean store the commands that only read open
(:func:`capplan_adapters.store.db.open_reader`): it loads neither the ORM nor the models, so
``capplan plans list`` starts in a fraction of the time (issue 26). Rows become the same
frozen domain objects as the ORM's, through :mod:`capplan_adapters.store.rows`.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, Select, and_, select

from capplan_adapters.store.rows import (
    audit_from_row,
    plan_from_parts,
    policy_version_from_row,
)
from capplan_adapters.store.tables import (
    audit_event,
    capacity_plan,
    policy_version,
    scaling_policy,
    scaling_step,
    simulation_result,
)
from capplan_core.planning.errors import StoreError

if TYPE_CHECKING:
    from sqlalchemy import Connection, Row

    from capplan_core.planning.policy_versions import PolicyVersion
    from capplan_core.planning.stored_plan import AuditEntry, StoredPlan


#: plan ids per ``IN (...)`` of the children's queries (SQLite caps a statement's parameters)
IN_CHUNK = 500


class PlanReader:
    """Reads over one engine (each call one connection and transaction)."""

    engine: Engine

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get_plan(self, plan_id: int) -> StoredPlan:
        plans = self._plans(select(capacity_plan).where(capacity_plan.c.id == plan_id))
        if not plans:
            raise StoreError(f"no plan with id {plan_id}")
        return plans[0]

    def list_plans(
        self, *, queue: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[StoredPlan]:
        q = select(capacity_plan)
        if queue:
            q = q.where(capacity_plan.c.queue == queue)
        if status:
            q = q.where(capacity_plan.c.status == status)
        return self._plans(q.order_by(capacity_plan.c.id.desc()).limit(limit))

    def _plans(self, query: Select[Any]) -> list[StoredPlan]:
        """The plans ``query`` selects, in its order, each with its steps and simulation."""
        with self.engine.connect() as conn:
            rows = list(conn.execute(query))
            steps, simulations = _children(conn, [r.id for r in rows])
        return [plan_from_parts(r, steps[r.id], simulations.get(r.id)) for r in rows]

    def audit_events(
        self, *, plan_id: int | None = None, action: str | None = None
    ) -> list[AuditEntry]:
        q = select(audit_event)
        if plan_id is not None:
            q = q.where(audit_event.c.plan_id == plan_id)
        if action is not None:
            q = q.where(audit_event.c.action == action)
        with self.engine.connect() as conn:
            return [audit_from_row(r) for r in conn.execute(q.order_by(audit_event.c.id))]

    def latest_audit_event(self, action: str, *, queue: str) -> AuditEntry | None:
        q = (
            select(audit_event)
            .where(audit_event.c.action == action, audit_event.c.queue == queue)
            .order_by(audit_event.c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return None if row is None else audit_from_row(row)

    def list_policies(self) -> list[PolicyVersion]:
        """Every policy at its current version, by name."""
        current = and_(
            scaling_policy.c.name == policy_version.c.name,
            scaling_policy.c.version == policy_version.c.version,
        )
        q = select(policy_version).join(scaling_policy, current).order_by(policy_version.c.name)
        with self.engine.connect() as conn:
            return [policy_version_from_row(r) for r in conn.execute(q)]


def _children(
    conn: Connection, plan_ids: list[int]
) -> tuple[defaultdict[int, list[Row[Any]]], dict[int, Row[Any]]]:
    """The step rows and the simulation row of each of ``plan_ids``, by plan id."""
    steps: defaultdict[int, list[Row[Any]]] = defaultdict(list)
    simulations: dict[int, Row[Any]] = {}
    for start in range(0, len(plan_ids), IN_CHUNK):  # as the ORM's selectinload batches
        chunk = plan_ids[start : start + IN_CHUNK]
        for s in conn.execute(
            select(scaling_step)
            .where(scaling_step.c.plan_id.in_(chunk))
            .order_by(scaling_step.c.plan_id, scaling_step.c.seq)
        ):
            steps[s.plan_id].append(s)
        for r in conn.execute(
            select(simulation_result).where(simulation_result.c.plan_id.in_(chunk))
        ):
            simulations[r.plan_id] = r
    return steps, simulations
