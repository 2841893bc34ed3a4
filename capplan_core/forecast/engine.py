"""``forecast_queue``: history of one queue -> calibrated arrival-rate forecast.

Steps: resample to the planning interval (mean of rates) and undo past calendar events;
flag anomalies (robust z) and keep them, and the caller's outliers, out of fitting; fill gaps;
backtest the candidate models on recent history and keep the lowest MASE; calibrate intervals
on that model's backtest errors (conformal, error scale per step and per forecast level);
forecast; apply future calendar events.
Methods follow Hyndman & Athanasopoulos, *Forecasting: Principles and Practice* (3rd ed.).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from capplan_core.forecast.anomaly import (
    RECENT_WINDOWS,
    Z_LIMIT,
    AnomalyReport,
    detect_anomalies,
)
from capplan_core.forecast.intervals import Calibration, extend_scale
from capplan_core.forecast.models import ForecastModel
from capplan_core.forecast.nowcast import RECENT_S, nowcast_factors
from capplan_core.forecast.opening import opening_hours
from capplan_core.forecast.prep import (
    DAY_S,
    WEEK_S,
    event_multipliers,
    fill_gaps,
    prepare_history,
    to_utc_index,
)
from capplan_core.forecast.regimes import regime_factors
from capplan_core.forecast.result import ForecastResult, NoHistoryError, central_bounds
from capplan_core.forecast.selection import choose
from capplan_core.policy import ForecastSpec

MIN_RELATIVE_SCALE = 0.01  # intervals never narrower than 1% of the recent level
SHORT_RELATIVE_SCALE = 0.1  # ... or 10% of it with under a day of history


def season_steps(interval_s: float, seasonality: Sequence[str]) -> tuple[int | None, int | None]:
    """Daily and weekly season lengths in steps (None where too coarse or not requested).

    The day length exists whenever a day holds at least two steps: it also drives the
    short-history rules; the weekly season only when ``seasonality`` asks for it.
    """
    day = int(round(DAY_S / interval_s)) if interval_s * 2 <= DAY_S else None
    week = int(round(WEEK_S / interval_s)) if "weekly" in seasonality and day else None
    return day, week


def _check_levels(levels: Sequence[float]) -> tuple[float, ...]:
    out = tuple(float(v) for v in levels)
    for v in out:
        if not 0.0 < v < 1.0:
            raise ValueError(f"levels: each level must be in (0, 1), got {v!r}")
    return out


def _recent_excluded(
    history: pd.Series, exclude: pd.Series | None, step_s: float
) -> list[pd.Timestamp]:
    if exclude is None or not len(exclude) or not len(history):
        return []
    ex = pd.Series(np.asarray(exclude, dtype=bool), index=to_utc_index(exclude.index))
    return [pd.Timestamp(t) for t in ex.index[ex.to_numpy()]]


def forecast_queue(
    history: pd.Series,
    spec: ForecastSpec,
    *,
    queue: str,
    levels: Sequence[float] = (0.8, 0.95),
    start: pd.Timestamp | None = None,
    interval_s: float | None = None,
    seed: int = 0,
    exclude: pd.Series | None = None,
) -> ForecastResult:
    """Forecast a queue's arrival rate (jobs/s) per window over ``spec.horizon_hours``.

    ``history`` is indexed by UTC timestamps at any regular interval (NaN = missing);
    ``exclude`` marks points to keep out of fitting (e.g. the cleaning stage's outliers).
    The engine is deterministic: ``seed`` is accepted for the contract and has no effect
    here (randomness enters only through ``ForecastResult.simulate``'s generator).

    Raises:
        NoHistoryError: no usable history; the planner should hold the current capacity.
        ValueError: a level outside (0, 1) or a non-positive interval.
    """
    del seed
    lv = _check_levels(levels)
    step_s = float(interval_s if interval_s is not None else spec.interval_minutes * 60)
    if not step_s > 0:
        raise ValueError(f"interval_s must be > 0, got {interval_s!r}")
    prep = prepare_history(history, step_s, exclude, spec.events)
    if len(prep.values) == 0:
        raise NoHistoryError(f"queue {queue!r}: no arrival-rate history to forecast from")
    last = prep.index[-1]
    first = pd.Timestamp(start) if start is not None else last + pd.Timedelta(seconds=step_s)
    first = first.tz_localize("UTC") if first.tzinfo is None else first.tz_convert("UTC")
    offset = max(0, int(round((first - last).total_seconds() / step_s)) - 1)
    n_out = max(1, math.ceil(spec.horizon_hours * 3600 / step_s - 1e-9))
    total = offset + n_out
    clock = pd.date_range(
        last + pd.Timedelta(seconds=step_s), periods=total, freq=pd.Timedelta(seconds=step_s)
    )
    timestamps = clock[offset:]
    day, week = season_steps(step_s, spec.seasonality)
    hours = opening_hours(prep.index, prep.values, step_s)
    open_day = hours.open_day_steps() if hours is not None else None
    notes: list[str] = []
    if hours is not None and open_day:
        # open-time series: the open windows end to end (opening.py)
        hist_open = ~hours.closed_at(prep.index)
        fut_open = ~hours.closed_at(clock)
        # a week with closed days is a weekly pattern by itself: its open-time week season
        # is used (once two weeks of history allow it) even if the policy asks for daily only
        weekly_calendar = (
            hours.period > hours.day_steps
            and hours.open_days_per_period() < hours.period // hours.day_steps
        )
        week_o = (
            open_day * hours.open_days_per_period()
            if (week or weekly_calendar) and hours.period > hours.day_steps
            else None
        )
        notes.append(
            hours.describe()
            + f"; forecast on open time ({open_day} windows a day"
            + (f", {week_o} a week" if week_o else "")
            + ")"
        )
        # the nowcast reads the last half hour only when it runs straight into the horizon
        nowcast_ok = bool(hist_open[-1] and fut_open[: offset + 1].all())
        fit = _fit_and_forecast(
            prep.index[hist_open],
            prep.values[hist_open],
            step_s,
            spec,
            lv,
            queue,
            day=open_day,
            week=week_o,
            offset=int(fut_open[:offset].sum()),
            n_out=max(1, int(fut_open[offset:].sum())),
            nowcast_ok=nowcast_ok,
            history=history,
            exclude=exclude,
            # models are chosen for the policy's whole horizon, not for the part of it that
            # is open now: a choice made at night (one open window ahead, or none) is kept
            # for the morning's multi-hour ramp (a backtest reselects once a day)
            select_horizon=n_out,
        )
        k = int(fut_open[offset:].sum())
        mean, scale = np.zeros(n_out), np.zeros(n_out)
        moved = np.zeros(n_out, dtype=bool)
        mean[fut_open[offset:]] = fit.mean[:k]
        scale[fut_open[offset:]] = fit.scale[:k]
        if fit.moved is not None:
            moved[fut_open[offset:]] = fit.moved[:k]
    else:
        fit = _fit_and_forecast(
            prep.index,
            prep.values,
            step_s,
            spec,
            lv,
            queue,
            day=day,
            week=week,
            offset=offset,
            n_out=n_out,
            nowcast_ok=True,
            history=history,
            exclude=exclude,
        )
        mean, scale = fit.mean, fit.scale
        moved = fit.moved if fit.moved is not None else np.zeros(n_out, dtype=bool)
        if hours is not None:
            notes.append(hours.describe() + "; closed windows forecast at zero")
            shut = hours.closed_at(timestamps)
            mean, scale = np.where(shut, 0.0, mean), np.where(shut, 0.0, scale)
    notes += fit.notes
    mult = event_multipliers(timestamps, step_s, spec.events)
    if np.any(mult != 1.0):
        notes.append(f"calendar events adjust {int(np.sum(mult != 1.0))} window(s)")
    mean, scale = mean * mult, scale * mult
    cal = fit.calibration
    model = fit.model
    selection = fit.selection
    recent = fit.recent
    anomalies = fit.anomalies
    return ForecastResult(
        anomaly_note=fit.anomaly_note,
        queue=queue,
        model=model.name,
        interval_s=step_s,
        timestamps=timestamps,
        mean=np.maximum(mean, 0.0),
        bounds=central_bounds(np.maximum(mean, 0.0), scale, cal.z_sorted, lv),
        selection=selection,
        recent_anomaly=recent,
        anomalies=anomalies,
        notes=notes,
        scale=scale,
        z_sorted=cal.z_sorted,
        path_correlation=cal.path_correlation,
        uncertain=uncertain_windows(timestamps, mean, step_s, weekly=bool(week), moved=moved),
    )


SWITCH_DAYS = (0, 5)  # Monday, Saturday: the first day of the weekdays and the weekend
RAMP_S = 2 * 3600.0  # the first two hours after a closed period
NOWCAST_MOVED = 0.05  # a nowcast factor further than this from 1 flags its window


def uncertain_windows(
    timestamps: pd.DatetimeIndex,
    mean: np.ndarray,
    step_s: float,
    *,
    weekly: bool,
    moved: np.ndarray,
) -> np.ndarray:
    """Windows whose calibration rests on thin evidence: the errors behind the intervals come
    from a day or so of origins, which rarely include a switch day (Mondays and Saturdays,
    with a weekly season) or the first hours after a closed period (no same-day evidence
    yet); and a level the nowcast moves by more than ``NOWCAST_MOVED`` is a surprise in
    progress (``moved``)."""
    out = np.asarray(moved, dtype=bool).copy()
    if weekly:
        out |= np.isin(timestamps.dayofweek, SWITCH_DAYS)
    closed = np.asarray(mean) <= 0
    ramp = int(round(RAMP_S / step_s))
    last_closed: int | None = None
    for i, c in enumerate(closed):
        if c:
            last_closed = i
        elif last_closed is not None and i - last_closed <= ramp:
            out[i] = True
    return out & ~closed


@dataclass
class _Fit:
    """The chosen model's forecast of ``n_out`` windows after ``offset`` (work time)."""

    mean: np.ndarray
    scale: np.ndarray
    model: ForecastModel
    calibration: Calibration
    selection: list[dict[str, Any]]
    notes: list[str]
    recent: bool
    anomalies: list[pd.Timestamp]
    moved: np.ndarray | None = None  # per window: the nowcast moved it > NOWCAST_MOVED
    anomaly_note: str | None = None  # the recent anomaly, with its numbers


def _fit_and_forecast(
    index: pd.DatetimeIndex,
    raw: np.ndarray,
    step_s: float,
    spec: ForecastSpec,
    lv: tuple[float, ...],
    queue: str,
    *,
    day: int | None,
    week: int | None,
    offset: int,
    n_out: int,
    nowcast_ok: bool,
    history: pd.Series,
    exclude: pd.Series | None,
    select_horizon: int = 0,
) -> _Fit:
    """Anomalies, gap filling, model choice, calibration and nowcast on one regular series
    (the clock's, or the open-time series of ``opening.py``). Candidates are judged at
    ``offset + n_out`` steps, or at ``select_horizon`` when that is longer."""
    notes: list[str] = []
    hour = max(1, int(round(3600 / step_s)))
    report = detect_anomalies(raw, day, hour)
    values = raw.copy()
    values[report.flags] = np.nan
    missing = int(np.sum(~np.isfinite(raw)))
    if missing:
        notes.append(f"{missing} missing window(s) filled before fitting")
    if report.flags.any():
        notes.append(f"{int(report.flags.sum())} anomalous window(s) kept out of fitting")
    y = fill_gaps(values, day if day and len(values) > day else None)
    if not np.isfinite(y).any():
        raise NoHistoryError(f"queue {queue!r}: no arrival-rate history to forecast from")
    total = offset + n_out
    recent_level = float(np.mean(np.abs(y[-(day or 96) :])))
    short = bool(day) and len(y) < int(day or 0)
    floor = max(recent_level * (SHORT_RELATIVE_SCALE if short else MIN_RELATIVE_SCALE), 1e-9)

    def stamp(i: int) -> str:
        t = (
            index[i]
            if i < len(index)
            else index[-1] + pd.Timedelta(seconds=step_s) * (i - len(index) + 1)
        )
        return str(t.isoformat())

    choice = choose(
        spec.model,
        y,
        horizon=max(total, select_horizon),
        day_steps=day,
        week_steps=week,
        levels=lv,
        floor=floor,
        stamp=stamp,
        seasonal=bool(spec.seasonality),
    )
    notes += choice.notes
    model = choice.model
    mean = model.forecast_mean(total)[offset:]
    scale = extend_scale(choice.calibration.scale, model.sigma_h(total), total)[offset:]
    # level-dependent error scale: peaks get wider intervals than troughs (intervals.py)
    scale = np.maximum(scale * choice.calibration.level_factor(mean), floor)
    work_ts = pd.date_range(
        index[-1] + pd.Timedelta(seconds=step_s * (offset + 1)),
        periods=n_out,
        freq=pd.Timedelta(seconds=step_s),
    )
    one_step_scale = float(scale[0]) if len(scale) else 0.0  # the nowcast's noise threshold
    regimes = (
        regime_factors(
            model,
            y,
            index,
            choice.calibration,
            horizon=min(total, len(choice.calibration.scale)),
            day_steps=day,
            weekly=bool(week),
        )
        if spec.interval_calibration == "regime"
        else None
    )
    if regimes is not None:
        scale = np.maximum(scale * regimes.for_windows(work_ts, mean), floor)
        notes.append(
            "intervals calibrated per regime: "
            + ", ".join(
                f"{k} x{v['factor']}"  # type: ignore[index]
                for k, v in regimes.describe().items()
            )
        )
    nc = (
        nowcast_factors(
            model,
            y,
            raw,
            recent_steps=max(1, int(round(RECENT_S / step_s))),
            offset=offset,
            n_out=n_out,
            step_s=step_s,
            half_life_s=spec.nowcast_half_life_hours * 3600.0,
            one_step_scale=one_step_scale,
        )
        if nowcast_ok
        else None
    )
    if nc is not None and nc.ratio != 1.0:
        notes.append(
            f"nowcast: the last hour ran at {nc.ratio:.3f}x the forecast; level "
            f"corrected (x{nc.factors[0]:.3f} next window, half-life "
            f"{spec.nowcast_half_life_hours:g} h)"
        )
        # the mean moves; the spread stays: the calibration's errors already saw the surprise
        mean = mean * nc.factors
    anomalies = [pd.Timestamp(t) for t in index[report.flags]]
    excluded = _recent_excluded(history, exclude, step_s)
    horizon_recent = index[-1] - pd.Timedelta(seconds=step_s * (RECENT_WINDOWS - 1))
    recent = report.recent or any(t >= horizon_recent for t in excluded)
    anomalies = sorted(set(anomalies) | set(excluded))
    return _Fit(
        mean,
        scale,
        model,
        choice.calibration,
        choice.selection,
        notes,
        recent,
        anomalies,
        np.abs(nc.factors - 1.0) > NOWCAST_MOVED if nc is not None else np.zeros(n_out, dtype=bool),
        anomaly_note=_anomaly_note(report, raw, index, excluded, horizon_recent),
    )


def _anomaly_note(
    report: AnomalyReport,
    raw: np.ndarray,
    index: pd.DatetimeIndex,
    excluded: list[pd.Timestamp],
    horizon_recent: pd.Timestamp,
) -> str | None:
    """Which recent window was anomalous, with the numbers a person needs to judge it."""
    i = report.recent_worst()
    if i is not None and report.expected is not None and report.z is not None:
        return (
            f"{raw[i]:.3g} jobs/s in the window at {index[i]:%Y-%m-%d %H:%M} UTC "
            f"against {max(0.0, float(report.expected[i])):.3g} expected "
            f"(robust z {float(report.z[i]):+.1f}, limit {Z_LIMIT:g})"
        )
    late = [t for t in excluded if t >= horizon_recent]
    if late:
        return (
            f"the window at {max(late):%Y-%m-%d %H:%M} UTC was an outlier the cleaning "
            "stage kept out"
        )
    return None
