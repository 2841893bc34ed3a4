"""Interval calibration per regime: the weekday/weekend switch days and the peaks.

The model-selection backtest sweeps only the last day or so (16 origins half a scored horizon
apart), so its errors rarely include a Monday morning after a weekend or a weekly peak, and
intervals calibrated on them alone under-cover exactly there. Here the chosen model (its
parameters kept, states re-run: cheap) is replayed from origins every quarter day over the
last two weeks, and its errors, normalised by the calibration's own per-step, per-level scale
(``z = e / (s_h · g(f))``), are sorted into regimes:

- **day kind** (only with a weekly season): ``switch`` = Mondays and Saturdays (the first day
  of the weekdays and of the weekend), ``steady`` = the other days;
- **level**: ``peak`` = forecast at or above the replay's upper quartile, ``offpeak`` below.

For a regime ``b``, ``k_b`` is the smallest widening of the calibrated 80 % interval
``[lo, hi]`` (in ``z`` units) under which 80 % of the regime's errors fall inside: a cell is
covered iff ``max(z/hi, z/lo) <= k``, so ``k_b`` is the 0.8 quantile of that ratio (split
conformal prediction per group, "Mondrian" conformal: Vovk et al. 2005, §4.5; Lei et al. 2018).
A regime with fewer than ``MIN_CELLS`` errors borrows from its day kind, then from all regimes
(the pooled ``k``). Factors are kept within ``[0.5, 3]``; a forecast window's scale is
multiplied by the factor of its regime.

Opt-in (``forecast.interval_calibration: regime``): on Taylor's series it brings the 80 %
interval's coverage from 0.73 to 0.79 (peaks 0.77, Mondays and Saturdays 0.78) and the 0.99
quantile's to 0.990, but plans sized to that calibrated quantile cost 1-3 % more worker-hours
at the same SLO attainment (docs/benchmarks-forecast.md). Multiplying by ``k_b / k_pooled``
instead (moving width between regimes, keeping the overall width) cost nothing and helped
nothing (coverage 0.71).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandas as pd

from capplan_core.forecast.intervals import Calibration, extend_scale
from capplan_core.forecast.models import ForecastModel

SPAN_DAYS = 14  # how far back the regime replay reaches
ORIGINS_PER_DAY = 4
MIN_CELLS = 40  # a regime with fewer errors borrows from a coarser one
FACTOR_LIMITS = (0.5, 3.0)
TARGET = 0.8  # the central interval whose coverage is equalised across regimes
SWITCH_DAYS = (0, 5)  # Monday, Saturday
PEAK_QUANTILE = 0.75


@dataclass(frozen=True)
class RegimeFactors:
    """Scale multipliers per regime, ``(day_kind, level)`` -> factor, and their evidence."""

    factors: dict[tuple[str, str], float]
    cells: dict[tuple[str, str], int]
    peak_level: float  # jobs/s: forecasts at or above this are "peak"
    weekly: bool

    def for_windows(self, timestamps: pd.DatetimeIndex, mean: np.ndarray) -> np.ndarray:
        """The factor of each forecast window (by its start time and forecast level)."""
        kinds = _day_kinds(timestamps, self.weekly)
        levels = np.where(np.asarray(mean) >= self.peak_level, "peak", "offpeak")
        return np.array(
            [self.factors.get((k, lv), 1.0) for k, lv in zip(kinds, levels, strict=True)]
        )

    def describe(self) -> dict[str, object]:
        return {
            f"{k}/{lv}": {"factor": round(f, 3), "cells": self.cells.get((k, lv), 0)}
            for (k, lv), f in sorted(self.factors.items())
        }


def _day_kinds(ts: pd.DatetimeIndex, weekly: bool) -> np.ndarray:
    if not weekly:
        return np.full(len(ts), "all", dtype=object)
    return np.where(np.isin(ts.dayofweek, SWITCH_DAYS), "switch", "steady").astype(object)


def _ratio_quantile(r: np.ndarray) -> float:
    """The finite-sample conformal quantile of the ratios (rank ceil((n + 1) · TARGET))."""
    r = np.sort(r[np.isfinite(r)])
    if not len(r):
        return 1.0
    k = min(len(r), int(np.ceil((len(r) + 1) * TARGET))) - 1
    return float(np.clip(r[k], *FACTOR_LIMITS))


def regime_factors(
    model: ForecastModel,
    y: np.ndarray,
    index: pd.DatetimeIndex,
    cal: Calibration,
    *,
    horizon: int,
    day_steps: int | None,
    weekly: bool,
) -> RegimeFactors | None:
    """Factors per regime from a replay of ``model`` (fitted; its states are re-run on a
    copy) over the last ``SPAN_DAYS``; None when there is too little history for it."""
    if not day_steps or horizon < 1 or len(y) != len(index):
        return None
    spacing = max(1, day_steps // ORIGINS_PER_DAY)
    first = max(2 * day_steps, len(y) - SPAN_DAYS * day_steps - horizon)
    origins = list(range(first, len(y) - horizon + 1, spacing))
    if len(origins) < 8:
        return None
    m = copy.deepcopy(model)
    fc = np.empty((len(origins), horizon))
    try:
        for i, o in enumerate(origins):
            m.refit(y[:o])
            fc[i] = m.forecast_mean(horizon)
    except (ValueError, np.linalg.LinAlgError, FloatingPointError):
        return None
    err = np.stack([y[o : o + horizon] for o in origins]) - fc
    scale = extend_scale(cal.scale, m.sigma_h(horizon), horizon)[None, :]
    z = err / np.maximum(scale * cal.level_factor(fc), 1e-12)
    n = len(cal.z_sorted)
    pos = np.arange(1, n + 1) / (n + 1)
    lo, hi = np.interp([(1 - TARGET) / 2, (1 + TARGET) / 2], pos, cal.z_sorted)
    if not (lo < 0 < hi):
        return None
    ratio = np.maximum(z / hi, z / lo).ravel()
    stamps = np.stack([index[o : o + horizon].asi8 for o in origins]).ravel()
    kinds = _day_kinds(pd.DatetimeIndex(stamps, tz="UTC"), weekly)
    peak_level = float(np.quantile(fc, PEAK_QUANTILE))
    levels = np.where(fc.ravel() >= peak_level, "peak", "offpeak")
    pooled = _ratio_quantile(ratio)
    factors: dict[tuple[str, str], float] = {}
    cells: dict[tuple[str, str], int] = {}
    for kind in sorted(set(kinds)):
        in_kind = kinds == kind
        kind_factor = _ratio_quantile(ratio[in_kind]) if in_kind.sum() >= MIN_CELLS else pooled
        for lv in ("peak", "offpeak"):
            sel = in_kind & (levels == lv)
            cells[(kind, lv)] = int(sel.sum())
            factors[(kind, lv)] = (
                _ratio_quantile(ratio[sel]) if sel.sum() >= MIN_CELLS else kind_factor
            )
    return RegimeFactors(factors, cells, peak_level, weekly)
