"""Pruning the plan store (SQLite and PostgreSQL) under :mod:`capplan_core.retention`'s rules.

Mixed into :class:`capplan_adapters.store.repo.PlanStore`. Old plans are read in batches of ids,
judged one by one by :func:`~capplan_core.retention.plan_keep_reason`, and each batch of
prunable plans goes in one short transaction (steps, simulation, forecast points, then the
plan; its audit rows stay, their ``plan_id`` moved into ``details``). A plan the rule lets go
is final (a final status, no open step), so nothing can revive it between the read and the
delete. Then data-quality reports and unlinked forecast points past the plan limit, audit rows
past the audit limit and ``queue_metrics`` rows past the metrics limit go.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from capplan_adapters.store.models import (
    AuditEventRow,
    CapacityPlanRow,
    DataQualityReportRow,
    ForecastPointRow,
    QueueMetricsRow,
    ScalingStepRow,
    SimulationResultRow,
    StepStatus,
)
from capplan_core.retention import (
    KEEP_STATUSES,
    OPEN_STEP_STATUSES,
    Cutoffs,
    PlanFacts,
    PruneReport,
    plan_keep_reason,
)

#: plans judged and deleted per transaction
PRUNE_BATCH = 500


class RetentionRepository:
    """``prune``: shares :class:`PlanStore`'s sessions."""

    _session: sessionmaker[Session]

    def prune(
        self, cut: Cutoffs, *, dry_run: bool = False, batch_size: int = PRUNE_BATCH
    ) -> PruneReport:
        """Delete what is older than ``cut`` (see the module docstring); with ``dry_run``
        delete nothing and count what would go. Returns the counts."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 (got {batch_size!r})")
        report = PruneReport(dry_run=dry_run, cutoffs=cut)
        with self._session() as s:
            newest = set(
                s.scalars(select(func.max(CapacityPlanRow.id)).group_by(CapacityPlanRow.queue))
            )
            last_scale = _plans_holding_last_scale(s)
        after = 0
        while True:
            with self._session() as s:
                batch = s.execute(
                    select(
                        CapacityPlanRow.id,
                        CapacityPlanRow.queue,
                        CapacityPlanRow.status,
                        CapacityPlanRow.created_at,
                    )
                    .where(CapacityPlanRow.created_at < cut.plans, CapacityPlanRow.id > after)
                    .order_by(CapacityPlanRow.id)
                    .limit(batch_size)
                ).all()
                if not batch:
                    break
                after = batch[-1].id
                open_steps = dict(
                    s.execute(
                        select(ScalingStepRow.plan_id, func.count())
                        .where(
                            ScalingStepRow.plan_id.in_([r.id for r in batch]),
                            ScalingStepRow.status.in_(OPEN_STEP_STATUSES),
                        )
                        .group_by(ScalingStepRow.plan_id)
                    ).all()
                )
            facts = [
                PlanFacts(
                    r.id,
                    r.queue,
                    r.status,
                    r.created_at,
                    open_steps=int(open_steps.get(r.id, 0)),
                    newest_of_queue=r.id in newest,
                    holds_last_scale=r.id in last_scale,
                )
                for r in batch
            ]
            ids = [f.plan_id for f in facts if plan_keep_reason(f, cut.plans) is None]
            report.plans_kept_old += len(facts) - len(ids)
            if ids:
                self._prune_plans(ids, report, dry_run)
        self._prune_rest(cut, report, dry_run)
        return report

    def _prune_plans(self, ids: list[int], report: PruneReport, dry_run: bool) -> None:
        """Delete the plans ``ids`` and what hangs off them, in one transaction."""
        children: Sequence[tuple[Any, Any]] = (
            (ScalingStepRow, ScalingStepRow.plan_id),
            (SimulationResultRow, SimulationResultRow.plan_id),
            (ForecastPointRow, ForecastPointRow.plan_id),
        )
        with self._session.begin() as s:
            counts = [
                _count(s, select(func.count()).select_from(model).where(col.in_(ids)))
                for model, col in children
            ]
            report.steps += counts[0]
            report.simulations += counts[1]
            report.forecast_points += counts[2]
            if dry_run:
                report.plans += len(ids)
                return
            for model, col in children:
                s.execute(delete(model).where(col.in_(ids)))
            for ev in s.scalars(select(AuditEventRow).where(AuditEventRow.plan_id.in_(ids))).all():
                ev.details = {**(ev.details or {}), "plan_id": ev.plan_id}
                ev.plan_id = None
            s.flush()
            # a final plan stays final: the status guard only documents the rule
            gone = s.execute(
                delete(CapacityPlanRow).where(
                    CapacityPlanRow.id.in_(ids), CapacityPlanRow.status.not_in(KEEP_STATUSES)
                )
            )
            report.plans += int(getattr(gone, "rowcount", 0) or 0)

    def _prune_rest(self, cut: Cutoffs, report: PruneReport, dry_run: bool) -> None:
        """Unlinked forecast points and quality reports (plan limit), audit rows (audit limit)
        and ``queue_metrics`` (metrics limit)."""
        targets: list[tuple[str, Any, Any]] = [
            (
                "forecast_points",
                ForecastPointRow,
                (ForecastPointRow.plan_id.is_(None), ForecastPointRow.created_at < cut.plans),
            ),
            (
                "quality_reports",
                DataQualityReportRow,
                (DataQualityReportRow.created_at < cut.plans,),
            ),
            ("audit_events", AuditEventRow, (AuditEventRow.at < cut.audit,)),
            ("queue_metrics", QueueMetricsRow, (QueueMetricsRow.recorded_at < cut.metrics,)),
        ]
        for field, model, where in targets:
            with self._session.begin() as s:
                if dry_run:
                    n = _count(s, select(func.count()).select_from(model).where(*where))
                else:
                    n = int(getattr(s.execute(delete(model).where(*where)), "rowcount", 0) or 0)
            setattr(report, field, getattr(report, field) + n)


def _count(s: Session, query: Select[Any]) -> int:
    return int(s.scalar(query) or 0)


def _plans_holding_last_scale(s: Session) -> set[int]:
    """Ids of the plans whose step is their queue's most recently applied one."""
    step, plan = ScalingStepRow, CapacityPlanRow
    last = (
        select(plan.queue.label("queue"), func.max(step.applied_at).label("at"))
        .join(plan, plan.id == step.plan_id)
        .where(step.status == StepStatus.APPLIED, step.applied_at.is_not(None))
        .group_by(plan.queue)
        .subquery()
    )
    return set(
        s.scalars(
            select(step.plan_id)
            .join(plan, plan.id == step.plan_id)
            .join(last, (last.c.queue == plan.queue) & (last.c.at == step.applied_at))
            .where(step.status == StepStatus.APPLIED)
        )
    )
