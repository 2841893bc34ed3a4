"""Data-quality expectations (Great Expectations 1.x), critical and warning.

Two validations per queue:
- on the raw rows: schema, nulls, ranges, unique and ordered timestamps, freshness — row-level
  expectations use ``mostly`` so that a handful of bad rows (which cleaning drops) are reported
  as such, while a source that is mostly broken fails;
- on the cleaned series: coverage (share of intervals present), outliers, and plausibility
  (a pool cannot complete more jobs than its workers can serve).
A queue with a failed *critical* expectation is not planned; the message names the expectation,
the column and sample bad values.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from capplan_core.metrics.schema import (
    CLOCK_SKEW_S,
    MAX_FINITE,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
)
from capplan_core.quality.clean import CleanResult
from capplan_core.utc import utc_timestamp

CRITICAL, WARNING = "critical", "warning"
_lock = threading.Lock()


@dataclass(frozen=True)
class QualityThresholds:
    row_validity_mostly: float = 0.99  # share of rows that must be valid, per check
    freshness_intervals: int = 4  # newest row within this many planning intervals of now
    coverage_min: float = 0.80  # critical: share of intervals present over the history
    coverage_warn: float = 0.97
    implied_utilization_max: float = 1.25
    outlier_share_warn: float = 0.01
    clock_skew_s: float = CLOCK_SKEW_S  # rows newer than the run's clock by more: "future"


@dataclass(frozen=True)
class QualityReport:
    queue: str
    checks: list[dict[str, Any]] = field(default_factory=list)
    # rows cleaning dropped: [{"column", "reason", "rows"}] (clean.dropped_rows)
    dropped_rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def critical_failures(self) -> list[dict[str, Any]]:
        return [c for c in self.checks if not c["success"] and c["severity"] == CRITICAL]

    @property
    def warnings(self) -> list[dict[str, Any]]:
        return [c for c in self.checks if not c["success"] and c["severity"] == WARNING]

    @property
    def passed(self) -> bool:
        return not self.critical_failures

    @property
    def reason(self) -> str | None:
        """Why this queue is not planned (None when it passed)."""
        if self.passed:
            return None
        return "data quality: " + "; ".join(c["message"] for c in self.critical_failures)

    def as_dict(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "passed": self.passed,
            "reason": self.reason,
            "checks": self.checks,
            "dropped_rows": self.dropped_rows,
        }


@lru_cache(maxsize=1)
def _batch_definition() -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = ctx.data_sources.add_pandas("capplan").add_dataframe_asset("queue_metrics")
    return asset.add_batch_definition_whole_dataframe("whole")


def _raw_suite(
    now: datetime,
    future_after: pd.Timestamp,
    interval_s: float,
    th: QualityThresholds,
    optional_columns: tuple[str, ...],
) -> list[Any]:
    import great_expectations.expectations as gxe

    crit = {"severity": CRITICAL}
    out: list[Any] = [gxe.ExpectColumnToExist(column=c, meta=crit) for c in REQUIRED_COLUMNS]
    for col in ("arrival_rate", "service_rate", "backlog", "workers"):
        out.append(
            gxe.ExpectColumnValuesToNotBeNull(column=col, mostly=th.row_validity_mostly, meta=crit)
        )
        # max_value: `inf` is no measurement (it would crash sizing in int(inf))
        out.append(
            gxe.ExpectColumnValuesToBeBetween(
                column=col,
                min_value=0,
                max_value=MAX_FINITE,
                mostly=th.row_validity_mostly,
                meta=crit,
            )
        )
    for col in optional_columns:  # may be null; when given, finite and >= 0
        out.append(
            gxe.ExpectColumnValuesToBeBetween(
                column=col,
                min_value=0,
                max_value=MAX_FINITE,
                mostly=th.row_validity_mostly,
                meta=crit,
            )
        )
    out.append(
        gxe.ExpectColumnValuesToBeBetween(
            column="service_rate",
            min_value=0,
            strict_min=True,
            mostly=th.row_validity_mostly,
            meta=crit,
        )
    )
    out.append(
        gxe.ExpectColumnValuesToBeUnique(
            column="timestamp", mostly=th.row_validity_mostly, meta=crit
        )
    )
    out.append(
        gxe.ExpectColumnValuesToBeIncreasing(
            column="timestamp", strictly=True, mostly=th.row_validity_mostly, meta=crit
        )
    )
    fresh_after = pd.Timestamp(now) - pd.Timedelta(seconds=interval_s * th.freshness_intervals)
    out.append(
        gxe.ExpectColumnMaxToBeBetween(
            column="timestamp", min_value=fresh_after, meta={**crit, "label": "freshness"}
        )
    )
    # one row from the future means this source's clock is wrong: no tolerance
    out.append(
        gxe.ExpectColumnValuesToBeBetween(
            column="timestamp", max_value=future_after, meta={**crit, "label": "future"}
        )
    )
    return out


def _series_suite(expected_rows: int, th: QualityThresholds) -> list[Any]:
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectTableRowCountToBeBetween(
            min_value=int(np.ceil(th.coverage_min * expected_rows)),
            meta={"severity": CRITICAL, "label": "coverage"},
        ),
        gxe.ExpectTableRowCountToBeBetween(
            min_value=int(np.ceil(th.coverage_warn * expected_rows)),
            meta={"severity": WARNING, "label": "coverage"},
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="outlier",
            value_set=[False],
            mostly=1 - th.outlier_share_warn,
            meta={"severity": WARNING, "label": "outliers"},
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="implied_utilization",
            max_value=th.implied_utilization_max,
            mostly=0.98,
            meta={"severity": WARNING, "label": "plausibility"},
        ),
    ]


def _sample(values: list[Any]) -> list[Any]:
    out = []
    for v in values[:5]:
        if isinstance(v, pd.Timestamp):
            out.append(v.isoformat())
        elif isinstance(v, float) and np.isnan(v):
            out.append(None)
        else:
            out.append(v.item() if hasattr(v, "item") else v)
    return out


def _run(frame: pd.DataFrame, expectations: list[Any]) -> list[dict[str, Any]]:
    import great_expectations as gx

    suite = gx.ExpectationSuite(name="capplan", expectations=expectations)
    with _lock:
        batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(suite, result_format="SUMMARY")
    checks = []
    for r in result.results:
        cfg = r.expectation_config
        kwargs = dict(cfg.kwargs)
        meta = cfg.meta or {}
        res = r.result or {}
        sample = _sample(list(res.get("partial_unexpected_list") or []))
        observed = res.get("observed_value")
        if isinstance(observed, pd.Timestamp):
            observed = observed.isoformat()
        label = meta.get("label") or cfg.type
        col = kwargs.get("column")
        if r.success and res.get("unexpected_count"):
            msg = (
                f"{cfg.type}({col}): {res['unexpected_count']} bad rows within tolerance "
                f"(dropped by cleaning), e.g. {sample}"
            )
        elif r.success:
            msg = f"{label} ok"
        elif label == "future":
            msg = (
                f"future: {res.get('unexpected_count')} row(s) newer than the run's clock "
                f"plus the skew allowance ({pd.Timestamp(kwargs['max_value']).isoformat()}), "
                f"e.g. {sample}"
            )
        elif res.get("unexpected_count") is not None:
            msg = (
                f"{cfg.type}({col}) failed: {res['unexpected_count']} of "
                f"{res.get('element_count')} rows "
                f"({res.get('unexpected_percent', 0):.2f}%) unexpected, e.g. {sample}"
            )
        elif label == "freshness":
            msg = (
                f"freshness: newest row at {observed}, expected at or after "
                f"{pd.Timestamp(kwargs['min_value']).isoformat()}"
            )
        elif label == "coverage":
            msg = (
                f"coverage: {observed} of the expected intervals present, "
                f"need at least {kwargs.get('min_value')}"
            )
        else:
            bound = {
                k: str(v)
                for k, v in kwargs.items()
                if k in ("min_value", "max_value") and v is not None
            }
            msg = f"{label}: {cfg.type}({col or 'table'}) observed {observed!r}, expected {bound}"
        checks.append(
            {
                "expectation": cfg.type,
                "label": label,
                "column": col,
                "severity": meta.get("severity", CRITICAL),
                "success": bool(r.success),
                "unexpected_count": res.get("unexpected_count"),
                "unexpected_percent": res.get("unexpected_percent"),
                "sample": sample,
                "observed": observed if not isinstance(observed, float | int) else float(observed),
                "message": msg,
            }
        )
    return checks


def check_queue(
    raw_rows: pd.DataFrame,
    clean: CleanResult | None,
    *,
    now: datetime,
    interval_s: float,
    thresholds: QualityThresholds | None = None,
    wall_clock: datetime | None = None,
) -> QualityReport:
    """Validate one queue's raw rows (and its cleaned series, when there is one).

    A row newer than ``max(now, wall_clock)`` (default wall clock: the real one) by more than
    ``thresholds.clock_skew_s`` fails this queue ("future"): a replay's ``now`` may lie
    before rows that are real, the wall clock never does.
    """
    th = thresholds or QualityThresholds()
    clock = max(utc_timestamp(now), utc_timestamp(wall_clock or datetime.now(UTC)))
    future_after = clock + pd.Timedelta(seconds=th.clock_skew_s)
    optional = tuple(c for c in OPTIONAL_COLUMNS if c in raw_rows.columns)
    checks = _run(
        raw_rows.reset_index(drop=True), _raw_suite(now, future_after, interval_s, th, optional)
    )
    if clean is not None and len(clean.series):
        s = clean.series
        present = s.dropna(subset=["arrival_rate"]).copy()
        capacity = present["service_rate"] * present["workers"] * interval_s
        implied = present["arrival_rate"] * interval_s - present["backlog"].diff().fillna(0)
        present["implied_utilization"] = (implied / capacity.where(capacity > 0)).fillna(0.0)
        present["outlier"] = present["outlier"].astype(bool)
        checks += _run(present.reset_index(drop=True), _series_suite(len(s), th))
    return QualityReport(
        queue=str(raw_rows["queue"].iloc[0]) if len(raw_rows) else "?",
        checks=checks,
        dropped_rows=list((clean.report if clean else {}).get("dropped_rows", [])),
    )
