"""Metrics, forecasts and data-quality reports: the time-series half of the plan store."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from capplan_core.metrics.file_source import validate_metrics_frame
from capplan_core.metrics.schema import OPTIONAL_COLUMNS, REQUIRED_COLUMNS
from capplan_core.planning.stored_plan import ForecastPoint
from capplan_core.store.models import DataQualityReportRow, ForecastPointRow, QueueMetricsRow


class MetricsRepository:
    """Mixed into :class:`capplan_core.store.repo.PlanStore` (shares its session factory)."""

    _session: sessionmaker[Session]

    def session(self) -> Session:
        return self._session()

    # -- metrics and forecasts ------------------------------------------------------------
    def record_metrics(self, rows: Iterable[dict[str, Any]]) -> int:
        """Write queue_metrics rows; a (queue_name, recorded_at) already present is skipped.

        Returns how many rows were new. Re-running an interval writes nothing twice.
        """
        rows = list(rows)
        if not rows:
            return 0
        written = 0
        with self._session.begin() as s:
            by_queue: dict[str, list[dict[str, Any]]] = {}
            for r in rows:
                by_queue.setdefault(r["queue_name"], []).append(r)
            for queue, qrows in by_queue.items():
                times = [r["recorded_at"] for r in qrows]
                existing = set(
                    s.scalars(
                        select(QueueMetricsRow.recorded_at).where(
                            QueueMetricsRow.queue_name == queue,
                            QueueMetricsRow.recorded_at >= min(times),
                            QueueMetricsRow.recorded_at <= max(times),
                        )
                    )
                )
                seen = set(existing)
                for r in qrows:
                    if r["recorded_at"] in seen:
                        continue
                    seen.add(r["recorded_at"])
                    s.add(QueueMetricsRow(**r))
                    written += 1
        return written

    def metrics(self, queue: str, since: datetime | None = None) -> list[QueueMetricsRow]:
        with self.session() as s:
            q = select(QueueMetricsRow).where(QueueMetricsRow.queue_name == queue)
            if since is not None:
                q = q.where(QueueMetricsRow.recorded_at >= since)
            return list(s.scalars(q.order_by(QueueMetricsRow.recorded_at)))

    def metrics_history(
        self, queue: str, since: datetime | None, until: datetime | None = None
    ) -> pd.DataFrame:
        """One queue's rows with ``since <= recorded_at <= until``, oldest first.

        The frame has the metrics-file columns and types (``timestamp`` UTC, ``queue``, the
        four required numbers, ``service_time_p95`` and ``service_time_scv`` from ``extra``;
        a missing value is NaN), like :func:`capplan_core.metrics.file_source.read_queue_rows`.
        ``since=None`` reads from the first row. Served by ``ix_metrics_queue_time``.
        """
        m = QueueMetricsRow
        q = select(m.recorded_at, m.queue_name, m.arrival_rate, m.service_rate, m.backlog,
                   m.workers, *(m.extra[c].as_float() for c in OPTIONAL_COLUMNS)
                   ).where(m.queue_name == queue)
        if since is not None:
            q = q.where(m.recorded_at >= since)
        if until is not None:
            q = q.where(m.recorded_at <= until)
        with self.session() as s:
            rows = s.execute(q.order_by(m.recorded_at)).all()
        frame = pd.DataFrame.from_records(
            rows, columns=[*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS], coerce_float=True)
        return validate_metrics_frame(frame, source=f"store:{queue}")

    def prune_metrics(self, older_than: datetime) -> int:
        """Delete every queue_metrics row recorded before ``older_than``; returns how many."""
        with self._session.begin() as s:
            result = s.execute(delete(QueueMetricsRow).where(
                QueueMetricsRow.recorded_at < older_than))
            return int(getattr(result, "rowcount", 0) or 0)

    def save_forecast(self, plan_id: int | None, points: Iterable[ForecastPoint]) -> int:
        with self._session.begin() as s:
            objs = [ForecastPointRow(plan_id=plan_id, **asdict(p)) for p in points]
            s.add_all(objs)
            return len(objs)

    def forecast_points(self, plan_id: int) -> list[ForecastPoint]:
        with self.session() as s:
            q = select(ForecastPointRow).where(ForecastPointRow.plan_id == plan_id)
            return [ForecastPoint(queue_name=r.queue_name, forecast_time=r.forecast_time,
                                  predicted_rate=r.predicted_rate,
                                  confidence_lower=r.confidence_lower,
                                  confidence_upper=r.confidence_upper, level=r.level,
                                  model=r.model)
                    for r in s.scalars(q.order_by(ForecastPointRow.forecast_time))]

    def save_quality_report(self, queue: str, passed: bool, report: dict[str, Any]) -> int:
        with self._session.begin() as s:
            row = DataQualityReportRow(queue=queue, passed=passed, report=report)
            s.add(row)
            s.flush()
            return row.id

