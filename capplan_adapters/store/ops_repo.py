"""Read-only queries for the operators' metrics (``capplan exporter``): counts and recent plans.

Mixed into :class:`capplan_adapters.store.repo.PlanStore`. Nothing here writes. Every method
returns plain values or :class:`capplan_core.ops_metrics.PlanFact` records, never rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from capplan_adapters.store.models import (
    AuditEventRow,
    CapacityPlanRow,
    ForecastPointRow,
    QueueMetricsRow,
    ScalingPolicyRow,
    ScalingStepRow,
)
from capplan_core.ops_metrics import AWAITING, PlanFact


class OpsRepository:
    """Counts and recent plans for the exporter (shares :class:`PlanStore`'s sessions)."""

    _session: sessionmaker[Session]

    def plan_status_counts(self) -> dict[str, int]:
        """How many stored plans are in each status."""
        p = CapacityPlanRow
        with self._session() as s:
            return {st: n for st, n in s.execute(select(p.status, func.count()).group_by(p.status))}

    def step_status_counts(self) -> dict[str, int]:
        """How many stored steps are in each status."""
        st = ScalingStepRow
        with self._session() as s:
            return {
                status: n
                for status, n in s.execute(select(st.status, func.count()).group_by(st.status))
            }

    def audit_action_counts(self, actions: Iterable[str]) -> dict[str, int]:
        """How many audit events of each of ``actions`` are stored (0 for none)."""
        wanted = list(actions)
        a = AuditEventRow
        with self._session() as s:
            found = dict(
                s.execute(
                    select(a.action, func.count()).where(a.action.in_(wanted)).group_by(a.action)
                ).all()
            )
        return {act: int(found.get(act, 0)) for act in wanted}

    def recent_plan_facts(self, limit: int = 5000) -> list[PlanFact]:
        """The newest ``limit`` plans (by id), newest first, as :class:`PlanFact`."""
        p = CapacityPlanRow
        with self._session() as s:
            rows = s.execute(
                select(p.id, p.queue, p.status, p.created_at, p.as_of, p.decided_at)
                .order_by(p.id.desc())
                .limit(limit)
            )
            return [PlanFact(*r) for r in rows]

    def decided_plan_facts(self, limit: int = 5000) -> list[PlanFact]:
        """The newest ``limit`` plans (by id) that have a decision time (for the
        approval-wait histogram): a scrape reads a bounded number of rows, whatever the
        history holds."""
        p = CapacityPlanRow
        with self._session() as s:
            rows = s.execute(
                select(p.id, p.queue, p.status, p.created_at, p.as_of, p.decided_at)
                .where(p.decided_at.is_not(None))
                .order_by(p.id.desc())
                .limit(limit)
            )
            return [PlanFact(*r) for r in rows]

    def oldest_awaiting_created_at(self) -> datetime | None:
        """Creation time of the oldest plan waiting for a person: ``proposed`` and its run
        asked for approval (``approve`` set an approval deadline). Advisory and plan-only
        plans stay ``proposed`` without waiting for anyone, so they do not count."""
        p = CapacityPlanRow
        with self._session() as s:
            waiting = [
                created
                for created, details in s.execute(
                    select(p.created_at, p.details).where(p.status == AWAITING)
                )
                if (details or {}).get("approval_deadline")
            ]
        return min(waiting, default=None)

    def enabled_policy_queues(self) -> set[str]:
        with self._session() as s:
            return set(
                s.scalars(select(ScalingPolicyRow.queue).where(ScalingPolicyRow.enabled.is_(True)))
            )

    def newest_forecasts(self) -> dict[str, tuple[int, list[tuple[datetime, float]]]]:
        """Per queue, the newest plan that stored a forecast: (plan id, [(time, jobs/s)])."""
        f = ForecastPointRow
        with self._session() as s:
            newest = dict(
                s.execute(
                    select(f.queue_name, func.max(f.plan_id))
                    .where(f.plan_id.is_not(None))
                    .group_by(f.queue_name)
                ).all()
            )
            if not newest:
                return {}
            out: dict[str, tuple[int, list[tuple[datetime, float]]]] = {
                q: (int(pid), []) for q, pid in newest.items() if pid is not None
            }
            for q, pid, t, rate in s.execute(
                select(f.queue_name, f.plan_id, f.forecast_time, f.predicted_rate)
                .where(f.plan_id.in_(list(newest.values())))
                .order_by(f.queue_name, f.forecast_time)
            ):
                if q in out and out[q][0] == pid:
                    out[q][1].append((t, rate))
            return out

    def arrival_rates(
        self, spans: dict[str, tuple[datetime, datetime]], *, chunk: int = 100
    ) -> dict[str, list[tuple[datetime, float]]]:
        """Per queue, ``(recorded_at, arrival_rate)`` with ``since <= recorded_at < until``
        for its ``(since, until)`` span, oldest first. One query per ``chunk`` queues."""
        m = QueueMetricsRow
        out: dict[str, list[tuple[datetime, float]]] = {q: [] for q in spans}
        queues = sorted(spans)
        with self._session() as s:
            for i in range(0, len(queues), chunk):
                ranges = [
                    and_(
                        m.queue_name == q, m.recorded_at >= spans[q][0], m.recorded_at < spans[q][1]
                    )
                    for q in queues[i : i + chunk]
                ]
                for q, t, r in s.execute(
                    select(m.queue_name, m.recorded_at, m.arrival_rate)
                    .where(or_(*ranges), m.arrival_rate.is_not(None))
                    .order_by(m.queue_name, m.recorded_at)
                ):
                    if r is not None:
                        out[q].append((t, r))
        return out
