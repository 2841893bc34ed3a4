"""Interval calibration from backtest errors: split-conformal prediction with per-step,
level-dependent scales.

Hyndman & Athanasopoulos, *FPP3* §5.5: when model-based intervals are doubtful, use the
empirical distribution of (out-of-sample) forecast errors. Queue traffic errors grow with the
traffic level (a peak misses by more jobs/s than the night trough), so the error at step ``h``
of a window forecast at level ``f`` is divided by ``s_h * g(f)``, where
``g(f) = (1 - w) + w * f / L`` blends a constant scale (``w = 0``) with one proportional to
the forecast level (``w = 1``; ``L`` = mean backtest forecast), ``w`` chosen per model by the
backtest likelihood of a Laplace error, and ``s_h`` is a smoothed per-step scale (RMS over
origins) of the level-normalised errors. The normalised errors of all steps are pooled and the
interval at step ``h`` is ``mean_h + s_h * g(mean_h) * quantiles(pooled)``: the normalised
scale of split-conformal regression (Lei et al. 2018, *JASA* 113, §5.2), so coverage holds at
peaks and troughs alike, not only on average. Coverage is reported leave-one-origin-out, so it
is an honest out-of-sample estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from capplan_core.forecast.result import normal_z_sample

MIN_POOLED = 20  # fewer normalised errors than this -> Gaussian shape
LEVEL_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)  # candidate w of g(f) = (1 - w) + w * f / L
MIN_LEVEL_FACTOR = 0.05  # g never below 5% of the scale at the reference level
MIN_GAIN = 0.005  # a level weight must beat the constant scale by this much log-likelihood


@dataclass(frozen=True)
class Calibration:
    """Predictive error distribution: ``scale`` (jobs/s per step), pooled ``z_sorted``,
    lag-1 error correlation for paths, and leave-one-origin-out coverage per level."""

    scale: np.ndarray
    z_sorted: np.ndarray
    path_correlation: float
    coverage: dict[float, float]
    level_weight: float = 0.0  # w of the level factor g (0: the scale ignores the level)
    ref_level: float = 0.0  # L of the level factor g, jobs/s

    def level_factor(self, level: np.ndarray) -> np.ndarray:
        """``g(level)``: multiplies ``scale`` for windows forecast at ``level`` (jobs/s)."""
        return level_factor(level, self.ref_level, self.level_weight)


def level_factor(level: np.ndarray, ref: float, weight: float) -> np.ndarray:
    """``g(f) = max((1 - w) + w * f / L, MIN_LEVEL_FACTOR)``; 1 when ``w`` or ``L`` is 0."""
    f = np.abs(np.asarray(level, dtype=float))
    if weight <= 0 or not ref > 0 or not np.isfinite(ref):
        return np.ones_like(f)
    g = (1.0 - weight) + weight * np.nan_to_num(f, nan=ref) / ref
    return np.asarray(np.maximum(g, MIN_LEVEL_FACTOR))


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    if width <= 1 or len(x) < 3:
        return x
    width = min(width, len(x)) | 1
    pad = width // 2
    ext = np.concatenate([np.full(pad, x[0]), x, np.full(pad, x[-1])])
    return np.convolve(ext, np.ones(width) / width, mode="valid")


def step_scale(errors: np.ndarray, floor: float) -> np.ndarray:
    """Smoothed RMS error per step over the backtest origins (jobs/s); NaN cells are left out
    (a step with none borrows the mean square of the others)."""
    sq = np.square(errors)
    ok = np.isfinite(sq)
    return _scale_from_sums(np.sum(np.where(ok, sq, 0.0), axis=0), ok.sum(axis=0), floor)


def _scale_from_sums(ssq: np.ndarray, cnt: np.ndarray, floor: float) -> np.ndarray:
    msq = np.divide(ssq, cnt, out=np.full(len(cnt), np.nan), where=cnt > 0)
    if not np.isfinite(msq).all():
        msq = np.where(np.isfinite(msq), msq, np.nanmean(msq) if np.isfinite(msq).any() else 0.0)
    width = max(3, len(msq) // 8)
    return np.asarray(np.maximum(np.sqrt(np.maximum(_smooth(msq, width), 0.0)), floor))


def extend_scale(scale: np.ndarray, sigma_h: np.ndarray, horizon: int) -> np.ndarray:
    """Continue ``scale`` beyond the backtested steps with the model's own error growth."""
    h = len(scale)
    if horizon <= h:
        return scale[:horizon]
    ref = sigma_h[h - 1] if len(sigma_h) >= h and sigma_h[h - 1] > 0 else 0.0
    extra = np.full(horizon - h, scale[-1])
    if ref > 0 and len(sigma_h) >= horizon:
        extra = scale[-1] * np.maximum(sigma_h[h:horizon] / ref, 1.0)
    return np.concatenate([scale, extra])


def _z_pool(errors: np.ndarray, scale: np.ndarray) -> np.ndarray:
    z = (errors / scale[None, :]).ravel()
    z = np.sort(z[np.isfinite(z)])
    return z if len(z) >= MIN_POOLED else normal_z_sample()


def _hits(z_train: np.ndarray, z_test: np.ndarray, level: float) -> tuple[int, int]:
    """(covered, scored) test errors of the central ``level`` interval of ``z_train``."""
    n = len(z_train)
    pos = np.arange(1, n + 1) / (n + 1)
    lo, hi = np.interp([(1 - level) / 2, (1 + level) / 2], pos, z_train)
    z = z_test[np.isfinite(z_test)]
    return int(np.sum((z >= lo) & (z <= hi))), len(z)


def informative(errors: np.ndarray, forecasts: np.ndarray) -> np.ndarray:
    """``errors`` with certain cells set to NaN: a window forecast at zero that saw no traffic
    (a night without jobs) says nothing about the size of errors, and pooled with the rest it
    would narrow the intervals of busy windows. Kept when too few other cells remain."""
    certain = (forecasts <= 0) & (errors == 0)
    if not certain.any() or int(np.sum(~certain & np.isfinite(errors))) < MIN_POOLED:
        return errors
    return np.where(certain, np.nan, errors)


def _laplace_cost(errors: np.ndarray, sigma: np.ndarray) -> float:
    """Mean negative log-likelihood (up to a constant) of a Laplace error with scale
    ``c * sigma``, ``c`` profiled out: robust to the odd burst, unlike a Gaussian."""
    ok = np.isfinite(errors) & (sigma > 0)
    if not ok.any():
        return float("inf")
    mad = float(np.mean(np.abs(errors[ok]) / sigma[ok]))
    return float(np.log(max(mad, 1e-300)) + np.mean(np.log(sigma[ok])))


def level_weight(errors: np.ndarray, forecasts: np.ndarray, floor: float) -> tuple[float, float]:
    """Choose ``(w, L)`` of the level factor by backtest likelihood (``w = 0`` unless it helps).

    ``L`` is the mean backtest forecast; an all-zero or non-finite forecast keeps ``w = 0``.
    """
    fc = np.abs(forecasts[np.isfinite(forecasts)])
    ref = float(np.mean(fc)) if len(fc) else 0.0
    if not ref > max(floor, 1e-9) or forecasts.shape != errors.shape:
        return 0.0, 0.0
    errors = informative(errors, forecasts)
    best_w, best = 0.0, float("inf")
    for w in LEVEL_WEIGHTS:
        g = level_factor(forecasts, ref, w)
        sigma = step_scale(errors / g, floor)[None, :] * g
        cost = _laplace_cost(errors, sigma) + (MIN_GAIN if w > 0 else 0.0)
        if cost < best:
            best_w, best = w, cost
    return best_w, ref


def calibrate(
    errors: np.ndarray,
    levels: tuple[float, ...],
    floor: float,
    forecasts: np.ndarray | None = None,
) -> Calibration:
    """Calibrate from backtest ``errors`` (origins x steps, actual - forecast); with the
    backtest ``forecasts`` (same shape) the scale may also follow the forecast level."""
    w, ref = 0.0, 0.0
    if forecasts is not None and forecasts.shape == errors.shape:
        w, ref = level_weight(errors, forecasts, floor)
        errors = informative(errors, forecasts)
        if w > 0:
            errors = errors / level_factor(forecasts, ref, w)
    scale = step_scale(errors, floor)
    z = _z_pool(errors, scale)
    zz = np.nan_to_num(errors / scale[None, :])
    num = float(np.sum(zz[:, 1:] * zz[:, :-1])) if zz.shape[1] > 1 else 0.0
    den = float(np.sum(zz[:, :-1] ** 2)) if zz.shape[1] > 1 else 0.0
    rho = float(np.clip(num / den, 0.0, 0.99)) if den > 0 else 0.0
    # leave-one-origin-out: the scale and error pool without origin i, scored on origin i
    sq = np.square(errors)
    ok = np.isfinite(sq)
    sq = np.where(ok, sq, 0.0)
    ssq, cnt = sq.sum(axis=0), ok.sum(axis=0)
    tally = {float(lv): [0, 0] for lv in levels}
    for i in range(errors.shape[0]):
        s = _scale_from_sums(ssq - sq[i], cnt - ok[i], floor)
        pool = _z_pool(np.delete(errors, i, axis=0), s)
        for lv in levels:
            c, n = _hits(pool, errors[i] / s, lv)
            tally[float(lv)][0] += c
            tally[float(lv)][1] += n
    coverage = {lv: c / n for lv, (c, n) in tally.items() if n}
    return Calibration(scale, z, rho, coverage, w, ref)


def gaussian_calibration(sigma_h: np.ndarray, widen: float, rho: float = 0.9) -> Calibration:
    """Model-based Gaussian intervals, widened by ``widen`` (too little data to backtest)."""
    return Calibration(np.asarray(sigma_h) * widen, normal_z_sample(), rho, {})
