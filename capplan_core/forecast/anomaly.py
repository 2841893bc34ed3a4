"""Residual-based anomaly detection with a robust z-score (median / MAD).

The expected value of each window is the median of the same slot on earlier days (when at
least three days are known) plus a rolling median of what is left (the local level), the
robust decomposition of Hyndman & Athanasopoulos, *FPP3* §3.6 / §13.9 ("outliers": the
residuals of a robust STL fit, flagged beyond a multiple of their spread). Points whose
residual is further than ``Z_LIMIT`` robust standard deviations are anomalies; they are kept
out of model fitting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

Z_LIMIT = 5.0
MAD_TO_SIGMA = 1.4826  # consistency constant for normal data
RECENT_WINDOWS = 4  # "recent" = the last four planning windows


@dataclass(frozen=True)
class AnomalyReport:
    flags: np.ndarray  # bool per window
    recent: bool  # a flagged window among the last RECENT_WINDOWS
    expected: np.ndarray | None = None  # per window: the slot median plus the local level
    z: np.ndarray | None = None  # per window: the robust z-score of the residual

    def recent_worst(self) -> int | None:
        """Index of the most extreme flagged window among the last ``RECENT_WINDOWS`` (the
        one a person is told about), or None."""
        if not self.recent or self.z is None:
            return None
        n = len(self.flags)
        tail = [i for i in range(max(0, n - RECENT_WINDOWS), n) if self.flags[i]]
        return max(tail, key=lambda i: abs(float(self.z[i]))) if tail else None  # type: ignore[index]


def _slot_median(y: np.ndarray, day_steps: int) -> np.ndarray:
    """Median of the same slot on all *other* days (0 where fewer than three days exist)."""
    days = len(y) // day_steps
    if days < 3:
        return np.zeros_like(y)
    t = np.arange(len(y))
    frame = pd.DataFrame({"slot": t % day_steps, "y": y})
    med = frame.groupby("slot")["y"].transform("median").to_numpy()
    return np.asarray(med, dtype=float)


def detect_anomalies(
    y: np.ndarray, day_steps: int | None, hour_steps: int, z_limit: float = Z_LIMIT
) -> AnomalyReport:
    """Flag anomalous windows of ``y`` (jobs/s, NaN = missing, never flagged)."""
    n = len(y)
    flags = np.zeros(n, dtype=bool)
    if n < 5:
        return AnomalyReport(flags, False)
    base = _slot_median(y, day_steps) if day_steps else np.zeros(n)
    rest = pd.Series(y - base)
    # the window spans about four hours, so bursts up to an hour stand out even at the end,
    # where the centred window is truncated to its past half
    width = max(5, 8 * hour_steps + 1)
    level = rest.rolling(width, center=True, min_periods=3).median().to_numpy()
    resid = y - base - level
    ok = np.isfinite(resid)
    if ok.sum() < 5:
        return AnomalyReport(flags, False)
    r = resid[ok]
    med = float(np.median(r))
    mad = float(np.median(np.abs(r - med))) * MAD_TO_SIGMA
    typical = float(np.nanmedian(np.abs(y)))
    # a near-constant series has MAD ~ 0; a floor keeps ordinary jitter from being flagged
    spread = max(mad, 0.02 * typical, 1e-9)
    # noise grows with the rate (peaks are noisier than nights): use the local spread where
    # it is larger than the global one
    local = (
        pd.Series(np.abs(resid - med))
        .rolling(max(width, (day_steps or 0) // 4), center=True, min_periods=3)
        .median()
        .to_numpy()
        * MAD_TO_SIGMA
    )
    local = np.where(np.isfinite(local), np.maximum(local, spread), spread)
    # noise that grows in proportion to the rate (a daily batch ten times the usual level,
    # Poisson-like or multiplicative): a window expected at more than twice the typical level
    # is measured against a spread proportional to its expected value (learnt where the
    # expected value is not near zero), not against its quieter neighbourhood's. Only there:
    # at ordinary levels the local spread stays the rule, and a burst there is still flagged
    # (the demo's emails: a burst let into fitting cost a window of its pooled backtest)
    expected = np.nan_to_num(np.abs(base + level))  # unknown level: 0, never "high"
    scaled = ok & (expected > 0.05 * typical)
    if scaled.sum() >= 5:
        rel = (resid[scaled] - med) / expected[scaled]
        rel_sigma = float(np.median(np.abs(rel - np.median(rel)))) * MAD_TO_SIGMA
        high = expected > 2.0 * typical
        local = np.where(high, np.maximum(local, rel_sigma * expected), local)
    z = np.zeros(n)
    z[ok] = (resid[ok] - med) / local[ok]
    flags = np.abs(z) > z_limit
    return AnomalyReport(flags, bool(flags[-RECENT_WINDOWS:].any()), expected=base + level, z=z)
