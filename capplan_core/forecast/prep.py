"""Input preparation: regularise, resample to the planning interval, fill gaps, apply events.

Rates are averaged over each target window ("mean of rates"), so a 5-minute series becomes
a 15-minute series whose values are still jobs/s. A coarser input is spread evenly over the
finer target windows (the rate is assumed constant within an input interval).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from capplan_core.policy import CalendarEvent
from capplan_core.utc import utc_timestamp

DAY_S = 86_400.0
WEEK_S = 7 * DAY_S


@dataclass(frozen=True)
class Prepared:
    """The history at the planning interval, ready for the models."""

    index: pd.DatetimeIndex  # window starts, UTC
    values: np.ndarray  # jobs/s, NaN where missing or excluded
    interval_s: float
    input_interval_s: float


def to_utc_index(index: pd.Index) -> pd.DatetimeIndex:
    """The history index as a tz-aware UTC DatetimeIndex (naive stamps are taken as UTC)."""
    idx = pd.DatetimeIndex(index)
    return idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")


def infer_interval_s(index: pd.DatetimeIndex) -> float | None:
    """The median spacing of the index in seconds, or None with fewer than two points."""
    if len(index) < 2:
        return None
    diffs = np.diff(index.asi8) / 1e9
    diffs = diffs[diffs > 0]
    return float(np.median(diffs)) if len(diffs) else None


def prepare_history(
    history: pd.Series,
    interval_s: float,
    exclude: pd.Series | None = None,
    events: Sequence[CalendarEvent] = (),
) -> Prepared:
    """Resample ``history`` (jobs/s) to windows of ``interval_s`` seconds.

    Excluded points (``exclude`` True) become missing before resampling. Past calendar-event
    windows are divided by their multiplier so one-off events do not shape the model.
    """
    s = pd.Series(np.asarray(history, dtype=float), index=to_utc_index(history.index))
    s = s[~s.index.isna()].sort_index()
    s = s[~s.index.duplicated(keep="last")]
    if exclude is not None and len(exclude):
        ex = pd.Series(np.asarray(exclude, dtype=bool), index=to_utc_index(exclude.index))
        ex = ex[~ex.index.duplicated(keep="last")].reindex(s.index, fill_value=False)
        s[ex.to_numpy()] = np.nan
    s[s < 0] = np.nan
    input_s = infer_interval_s(pd.DatetimeIndex(s.index)) or interval_s
    if len(s) == 0:
        return Prepared(pd.DatetimeIndex([], tz="UTC"), np.zeros(0), interval_s, input_s)
    step = pd.Timedelta(seconds=interval_s)
    if input_s > interval_s * 1.5:
        # coarse input: hold each rate over its whole input interval, then split it
        fine = s.resample(pd.Timedelta(seconds=input_s), origin="epoch").mean()
        upsampled = fine.resample(step, origin="epoch").ffill(
            limit=max(int(round(input_s / interval_s)) - 1, 0)
        )
        out = upsampled
    else:
        out = s.resample(step, origin="epoch", label="left", closed="left").mean()
    idx = pd.DatetimeIndex(out.index)
    values = out.to_numpy(dtype=float)
    values = remove_events(idx, values, interval_s, events)
    # trim leading missing windows; later gaps (also at the end, where the latest points may
    # have been excluded as outliers) stay NaN for the caller to fill
    ok = np.flatnonzero(np.isfinite(values))
    if len(ok) == 0:
        return Prepared(pd.DatetimeIndex([], tz="UTC"), np.zeros(0), interval_s, input_s)
    sl = slice(int(ok[0]), len(values))
    return Prepared(idx[sl], values[sl], interval_s, input_s)


def event_multipliers(
    index: pd.DatetimeIndex, interval_s: float, events: Sequence[CalendarEvent]
) -> np.ndarray:
    """Per-window demand multiplier from calendar events (product where events overlap).

    A window counts as inside an event when its midpoint lies in [start, end).
    """
    mult = np.ones(len(index))
    if not events or len(index) == 0:
        return mult
    mid = index + pd.Timedelta(seconds=interval_s / 2)
    for ev in events:
        start, end = utc_timestamp(ev.start), utc_timestamp(ev.end)
        inside = np.asarray((mid >= start) & (mid < end))
        mult[inside] *= ev.multiplier
    return mult


def remove_events(
    index: pd.DatetimeIndex,
    values: np.ndarray,
    interval_s: float,
    events: Sequence[CalendarEvent],
) -> np.ndarray:
    """Undo past events: divide the history inside each event window by its multiplier."""
    return np.asarray(values / event_multipliers(index, interval_s, events))


def fill_gaps(values: np.ndarray, season_steps: int | None = None) -> np.ndarray:
    """Fill missing values: from the same slot one season earlier/later where known, else by
    linear interpolation, and at the edges with the nearest known value."""
    y = values.astype(float).copy()
    missing = ~np.isfinite(y)
    if not missing.any():
        return y
    if season_steps and len(y) > season_steps:
        for shift in (season_steps, -season_steps):
            src = np.roll(y, shift)
            if shift > 0:
                src[:shift] = np.nan
            else:
                src[shift:] = np.nan
            take = ~np.isfinite(y) & np.isfinite(src)
            # use the seasonal donor only for long gaps; short ones interpolate better
            y[take & _long_gap_mask(missing, 4)] = src[take & _long_gap_mask(missing, 4)]
    still = ~np.isfinite(y)
    if still.any():
        known = np.flatnonzero(~still)
        y[still] = np.interp(np.flatnonzero(still), known, y[known])
    return y


def _long_gap_mask(missing: np.ndarray, min_len: int) -> np.ndarray:
    """True on runs of ``missing`` at least ``min_len`` long."""
    out = np.zeros_like(missing)
    start = None
    for i, m in enumerate(np.append(missing, False)):
        if m and start is None:
            start = i
        elif not m and start is not None:
            if i - start >= min_len:
                out[start:i] = True
            start = None
    return out
