"""The demand that really came: one queue's metric rows -> per-window actual rates.

The backtest scores every strategy against this trace. Each scoring window holds the mean
arrival rate (jobs/s), the mean service rate of one busy worker (jobs/s) and the service-time
SCV seen in the metrics. Cleaning is the quality stage's (``clean_queue``): invalid rows are
dropped and short gaps interpolated; outliers are *kept* (a spike that happened is demand the
pool had to serve). Longer gaps are filled from the neighbouring windows and reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from capplan_core.quality.clean import clean_queue
from capplan_core.utc import utc_timestamp


@dataclass(frozen=True)
class DemandTrace:
    """Actual demand per scoring window; ``starts`` are window starts (UTC)."""

    queue: str
    window_s: float
    starts: pd.DatetimeIndex
    arrival_rate_per_s: np.ndarray
    service_rate_per_s: np.ndarray
    service_scv: np.ndarray
    initial_backlog: float = 0.0  # jobs waiting at the first window's start
    initial_workers: int = 0  # replicas running at the first window's start
    prior_arrival_rate_per_s: float = 0.0  # the window before the first (what a meter shows)
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def end(self) -> pd.Timestamp:
        return self.starts[-1] + pd.Timedelta(seconds=self.window_s)

    def from_window(self, first: int) -> DemandTrace:
        """The windows from ``first`` on (the scored ones, after the warm-up)."""
        return DemandTrace(
            queue=self.queue,
            window_s=self.window_s,
            starts=self.starts[first:],
            arrival_rate_per_s=self.arrival_rate_per_s[first:],
            service_rate_per_s=self.service_rate_per_s[first:],
            service_scv=self.service_scv[first:],
            notes=self.notes,
        )


def demand_trace(
    rows: pd.DataFrame,
    *,
    queue: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
    window_s: float,
) -> DemandTrace:
    """Per-window actual demand over [start, end) from raw metric rows of one queue.

    ``start`` and ``end`` must be multiples of ``window_s`` (UTC).

    Raises:
        ValueError: no usable arrival-rate data in the period (message names it).
    """
    start, end = utc_timestamp(start), utc_timestamp(end)
    freq = pd.Timedelta(seconds=window_s)
    clean = clean_queue(rows, queue=queue, interval_s=window_s, now=end.to_pydatetime())
    s = clean.series
    before = s.loc[s.index < start]
    idx = pd.date_range(start, end, freq=freq, inclusive="left")
    period = s.reindex(idx)
    if period["arrival_rate"].notna().sum() == 0:
        raise ValueError(
            f"queue {queue!r}: no arrival-rate data between {start.isoformat()} "
            f"and {end.isoformat()}"
        )
    notes: list[str] = []
    missing = int(period["arrival_rate"].isna().sum())
    if missing:
        notes.append(f"{missing} window(s) without metrics filled from their neighbours")
    period = period.ffill().bfill()
    lam = period["arrival_rate"].to_numpy(dtype=float)
    mu = period["service_rate"].to_numpy(dtype=float)
    if "service_time_scv" in period and period["service_time_scv"].notna().any():
        scv = period["service_time_scv"].fillna(1.0).to_numpy(dtype=float)
    else:
        scv = np.ones(len(idx))
    last = before.dropna(subset=["arrival_rate"]).tail(1)
    return DemandTrace(
        queue=queue,
        window_s=float(window_s),
        starts=idx,
        arrival_rate_per_s=np.maximum(lam, 0.0),
        service_rate_per_s=mu,
        service_scv=np.clip(scv, 0.0, 100.0),
        initial_backlog=float(last["backlog"].iloc[0]) if len(last) else 0.0,
        initial_workers=int(round(float(last["workers"].iloc[0]))) if len(last) else 0,
        prior_arrival_rate_per_s=float(last["arrival_rate"].iloc[0])
        if len(last)
        else float(lam[0]),
        notes=notes,
    )
