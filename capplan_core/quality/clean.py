"""Cleaning: raw metric rows of one queue -> a regular series at the planning interval.

Steps, in order: drop rows whose values cannot be true (null or negative rates, non-positive
service rate), drop duplicated timestamps (keep the last report), discard history before the
policy's ``exclude_before``, resample to the interval (mean of rates, last value of state),
fill short gaps by time interpolation and mark long ones, then flag outliers with a robust
z-score against a rolling median (MAD), which the forecast keeps out of fitting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

RATE_COLUMNS = ("arrival_rate", "service_rate", "service_time_p95", "service_time_scv")
STATE_COLUMNS = ("backlog", "workers")
ROBUST_Z_LIMIT = 6.0  # |z| beyond this (MAD-scaled) is an outlier
MAD_TO_SIGMA = 1.4826  # consistency constant for normal data


@dataclass(frozen=True)
class CleanResult:
    """A regular series (index = interval starts, UTC) and what cleaning did to get it."""

    queue: str
    interval_s: float
    series: pd.DataFrame  # rates, backlog, workers (+optional columns), outlier, filled
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return bool(self.series["arrival_rate"].notna().sum() == 0)


def invalid_row_mask(rows: pd.DataFrame) -> pd.Series:
    """Rows no cleaning can repair: a null, negative or infinite rate/state, a service rate
    <= 0, or an infinite optional statistic (those may be null)."""
    bad = pd.Series(False, index=rows.index)
    for col in ("arrival_rate", "service_rate", "backlog", "workers"):
        bad |= rows[col].isna() | (rows[col] < 0) | np.isinf(rows[col])
    for col in ("service_time_p95", "service_time_scv"):
        if col in rows.columns:
            bad |= np.isinf(rows[col])
    bad |= rows["service_rate"] <= 0
    bad |= rows["timestamp"].isna()
    return bad


def dropped_rows(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """Why the rows :func:`invalid_row_mask` drops were dropped: per column and reason, how
    many (a row with two bad columns is counted under each), so a plan can say what it stands
    on (issue 22: an ``inf`` arrival rate was dropped without a word)."""
    out: list[dict[str, Any]] = []

    def add(column: str, reason: str, mask: pd.Series) -> None:
        n = int(mask.sum())
        if n:
            out.append({"column": column, "reason": reason, "rows": n})

    for col in ("arrival_rate", "service_rate", "backlog", "workers"):
        add(col, "null", rows[col].isna())
        add(col, "non-finite (inf)", np.isinf(rows[col]))
        add(col, "negative", rows[col] < 0)
    for col in ("service_time_p95", "service_time_scv"):
        if col in rows.columns:
            add(col, "non-finite (inf)", np.isinf(rows[col]))
    add("service_rate", "zero (no worker completes anything)", rows["service_rate"] == 0)
    add("timestamp", "null", rows["timestamp"].isna())
    return out


def robust_outliers(
    values: pd.Series, window: int = 5, limit: float = ROBUST_Z_LIMIT, level_floor: float = 0.05
) -> pd.Series:
    """Flag points far from their rolling median, in robust (MAD) units.

    The scale is the series-wide MAD of the residuals, floored at ``level_floor`` of the local
    level: on smooth, locally monotone series the MAD alone collapses to zero and would flag
    ordinary points.
    """
    med = values.rolling(window, center=True, min_periods=3).median()
    resid = values - med
    mad = float(np.nanmedian(np.abs(resid - np.nanmedian(resid)))) * MAD_TO_SIGMA
    scale = np.maximum(np.maximum(mad, level_floor * med.abs()), 1e-9)
    z = resid / scale
    return (z.abs() > limit).fillna(False)


def clean_queue(
    rows: pd.DataFrame,
    *,
    queue: str,
    interval_s: float,
    now: datetime,
    exclude_before: datetime | None = None,
    max_fill_intervals: int = 3,
) -> CleanResult:
    """Clean one queue's raw rows (already filtered to ``queue``) into a regular series."""
    report: dict[str, Any] = {"rows_in": int(len(rows))}
    bad = invalid_row_mask(rows)
    report["rows_dropped_invalid"] = int(bad.sum())
    report["dropped_rows"] = dropped_rows(rows) if bad.any() else []
    kept = rows.loc[~bad].sort_values("timestamp", kind="stable")
    dup = kept["timestamp"].duplicated(keep="last")
    report["rows_dropped_duplicate"] = int(dup.sum())
    if dup.any():
        report["dropped_rows"].append(
            {
                "column": "timestamp",
                "reason": "duplicate (the last report kept)",
                "rows": int(dup.sum()),
            }
        )
    kept = kept.loc[~dup]
    kept = kept.loc[kept["timestamp"] <= pd.Timestamp(now)]
    if exclude_before is not None:
        before = kept["timestamp"] < pd.Timestamp(exclude_before)
        report["rows_dropped_exclude_before"] = int(before.sum())
        if before.any():
            report["dropped_rows"].append(
                {
                    "column": "timestamp",
                    "reason": "before the policy's exclude_before",
                    "rows": int(before.sum()),
                }
            )
        kept = kept.loc[~before]

    freq = pd.Timedelta(seconds=interval_s)
    cols = [c for c in (*RATE_COLUMNS, *STATE_COLUMNS) if c in kept.columns]
    indexed = kept.set_index("timestamp")[cols]
    agg = {c: ("mean" if c in RATE_COLUMNS else "last") for c in cols}
    if indexed.empty:
        series = pd.DataFrame(columns=[*cols, "outlier", "filled"], dtype=float)
        series.index = pd.DatetimeIndex([], tz="UTC")
        report.update(intervals=0, gaps=[], filled=0, outliers=0)
        return CleanResult(queue, interval_s, series, report)
    # only whole intervals: the one containing `now` is still being filled
    end = pd.Timestamp(now).floor(freq)
    series = indexed.resample(freq, label="left", closed="left").agg(agg)
    series = series.loc[series.index < end]

    missing = series["arrival_rate"].isna()
    run_id = (missing != missing.shift()).cumsum()
    run_len = missing.groupby(run_id).transform("sum")
    short = missing & (run_len <= max_fill_intervals)
    series = series.interpolate(method="time", limit=max_fill_intervals, limit_area="inside")
    series["filled"] = short & series["arrival_rate"].notna()
    long_gap = missing & ~series["filled"]
    gaps = [
        {
            "start": grp.index[0].isoformat(),
            "end": (grp.index[-1] + freq).isoformat(),
            "intervals": int(len(grp)),
        }
        for _, grp in series.loc[long_gap].groupby(run_id[long_gap])
    ]
    series["outlier"] = robust_outliers(series["arrival_rate"])
    report.update(
        intervals=int(len(series)),
        filled=int(series["filled"].sum()),
        gaps=gaps,
        outliers=int(series["outlier"].sum()),
        outlier_times=[t.isoformat() for t in series.index[series["outlier"].to_numpy()]][:20],
        first=series.index[0].isoformat() if len(series) else None,
        last=series.index[-1].isoformat() if len(series) else None,
    )
    return CleanResult(queue, interval_s, series, report)


def latest_state(clean: CleanResult, lookback_intervals: int = 8) -> dict[str, float]:
    """Current workers/backlog and service-time statistics from the newest intervals.

    Service rate and SCV are medians over the lookback (robust to one odd report).
    """
    s = clean.series.dropna(subset=["arrival_rate"])
    if s.empty:
        raise ValueError(f"queue {clean.queue!r} has no usable metrics")
    tail = s.tail(lookback_intervals)
    mu = float(np.nanmedian(tail["service_rate"]))
    scv = float(np.nanmedian(tail["service_time_scv"])) if "service_time_scv" in s else 1.0
    return {
        "current_workers": float(tail["workers"].iloc[-1]),
        "current_backlog": float(tail["backlog"].iloc[-1]),
        "service_rate_per_s": mu,
        "mean_service_s": 1.0 / mu,
        "service_scv": scv if np.isfinite(scv) and scv > 0 else 1.0,
        "last_timestamp": s.index[-1].isoformat(),
    }
