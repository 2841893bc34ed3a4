"""Metrics, forecasts and data-quality reports: the time-series half of the plan store."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import DateTime, delete, select, type_coerce
from sqlalchemy.orm import Session, sessionmaker

from capplan_core.metrics.schema import OPTIONAL_COLUMNS
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
        # Core rows (no ORM objects) and a plain timestamp type: 40k rows per read
        q = select(type_coerce(m.recorded_at, DateTime(timezone=True)), m.arrival_rate,
                   m.service_rate, m.backlog, m.workers,
                   *(m.extra[c].as_float() for c in OPTIONAL_COLUMNS)
                   ).where(m.queue_name == queue)
        if since is not None:
            q = q.where(m.recorded_at >= since)
        if until is not None:
            q = q.where(m.recorded_at <= until)
        with self.session() as s:
            rows = s.connection().execute(q.order_by(m.recorded_at)).all()
        numbers = ("arrival_rate", "service_rate", "backlog", "workers", *OPTIONAL_COLUMNS)
        columns = list(zip(*rows, strict=True)) if rows else [()] * (1 + len(numbers))
        # integer microseconds since the epoch: 2x faster than parsing datetime objects, exact
        # (PostgreSQL returns aware datetimes, SQLite naive UTC ones)
        epoch = datetime(1970, 1, 1, tzinfo=UTC if rows and rows[0][0].tzinfo else None)
        micros = np.fromiter(((t - epoch) // timedelta(microseconds=1) for t in columns[0]),
                             dtype=np.int64, count=len(rows))
        frame = pd.DataFrame({
            "timestamp": pd.to_datetime(micros, unit="us", utc=True),
            "queue": pd.Series([queue] * len(rows), dtype="string"),
            **{c: np.array(columns[1 + i], dtype=float) for i, c in enumerate(numbers)},
        })
        return frame.astype({"timestamp": "datetime64[ns, UTC]"})

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

