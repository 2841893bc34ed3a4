"""Opening hours: zero-demand periods as first-class (issue 22).

A call centre open on weekdays 07:00–21:05 has no demand at night and at the weekend. Fitted
on the raw series, a seasonal model smears the closed hours into the open ones, and a
nowcast made at 06:30 reads the night's zeros as "demand runs at 0x the forecast" and carries
them into the morning. Here the closed slots are learned from the history itself:

- the **calendar**: slot ``s`` of the week (of the day, with under a week of history) is
  *closed* when every observed value there is at most ``CLOSED_SHARE`` of the open level
  (the median of the positive values). A calendar is kept only when at least
  ``MIN_CLOSED_SHARE`` of the slots are closed;
- **open-time series**: when every open day has the same open slots (the usual opening
  hours), the history's open windows are joined end to end, so the day season is the
  number of open windows a day and yesterday evening runs straight into this morning: the
  morning ramp comes from the seasonal profile, not from the night. The forecast is made on
  that series and put back on the clock; closed windows get zero demand and zero spread (the
  planner then releases the workers after closing and has them ready, startup included, at
  opening). Days with different opening hours: the series is forecast as it is and only the
  closed windows are set to zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from capplan_core.forecast.prep import DAY_S, WEEK_S

CLOSED_SHARE = 0.02  # a slot at most 2 % of the open level is closed
MIN_CLOSED_SHARE = 0.05  # fewer closed slots than this: no calendar (a 24/7 queue)


@dataclass(frozen=True)
class OpeningHours:
    """Closed slots of a repeating period (a week, or a day), on the epoch grid."""

    step_s: float
    period: int  # steps per period
    closed: np.ndarray  # bool per slot
    day_steps: int  # steps per day on the clock

    def closed_at(self, index: pd.DatetimeIndex) -> np.ndarray:
        """Whether each window start falls in a closed slot."""
        slot = (np.asarray(index.asi8) // int(round(self.step_s * 1e9))) % self.period
        return np.asarray(self.closed[slot], dtype=bool)

    def open_day_steps(self) -> int | None:
        """Open windows a day when every open day has the same open slots, else None."""
        days = self.period // self.day_steps
        if days < 1 or self.period % self.day_steps:
            return None
        rows = (~self.closed).reshape(days, self.day_steps)
        open_rows = [r for r in rows if r.any()]
        if not open_rows or any(not np.array_equal(r, open_rows[0]) for r in open_rows):
            return None
        return int(open_rows[0].sum())

    def open_days_per_period(self) -> int:
        days = self.period // self.day_steps
        return int(np.sum((~self.closed).reshape(days, self.day_steps).any(axis=1)))

    def describe(self) -> str:
        share = float(self.closed.mean())
        kind = "week" if self.period * self.step_s >= WEEK_S - 1 else "day"
        return f"opening hours learned from history: {share:.0%} of the {kind} closed (zero demand)"


def opening_hours(
    index: pd.DatetimeIndex, values: np.ndarray, step_s: float
) -> OpeningHours | None:
    """The calendar of closed slots seen in ``values`` (jobs/s per window, NaN = missing),
    or None when the queue is never closed (see the module docstring)."""
    day = int(round(DAY_S / step_s))
    if day < 2 or len(values) < day or abs(day * step_s - DAY_S) > 1e-6:
        return None
    span_s = len(values) * step_s
    period = 7 * day if span_s >= WEEK_S else day
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v)
    positive = v[ok & (v > 0)]
    if positive.size == 0:
        return None
    threshold = CLOSED_SHARE * float(np.median(positive))
    slot = (np.asarray(index.asi8) // int(round(step_s * 1e9))) % period
    seen = np.bincount(slot[ok], minlength=period)
    above = np.bincount(slot[ok & (v > threshold)], minlength=period)
    closed = (seen > 0) & (above == 0)
    if closed.mean() < MIN_CLOSED_SHARE or closed.all():
        return None
    return OpeningHours(step_s=step_s, period=period, closed=closed, day_steps=day)
