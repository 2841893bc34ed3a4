"""Interval calibration from backtest errors: split-conformal prediction with per-step scales.

Hyndman & Athanasopoulos, *FPP3* §5.5: when model-based intervals are doubtful, use the
empirical distribution of (out-of-sample) forecast errors. Errors at step ``h`` are divided by
a smoothed per-step scale ``s_h`` (RMS over origins), the normalised errors of all steps are
pooled, and the interval at step ``h`` is ``mean_h + s_h * quantiles(pooled)``. Coverage is
reported leave-one-origin-out, so it is an honest out-of-sample estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from capplan_core.forecast.result import normal_z_sample

MIN_POOLED = 20  # fewer normalised errors than this -> Gaussian shape


@dataclass(frozen=True)
class Calibration:
    """Predictive error distribution: ``scale`` (jobs/s per step), pooled ``z_sorted``,
    lag-1 error correlation for paths, and leave-one-origin-out coverage per level."""

    scale: np.ndarray
    z_sorted: np.ndarray
    path_correlation: float
    coverage: dict[float, float]


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    if width <= 1 or len(x) < 3:
        return x
    width = min(width, len(x)) | 1
    pad = width // 2
    ext = np.concatenate([np.full(pad, x[0]), x, np.full(pad, x[-1])])
    return np.convolve(ext, np.ones(width) / width, mode="valid")


def step_scale(errors: np.ndarray, floor: float) -> np.ndarray:
    """Smoothed RMS error per step over the backtest origins (jobs/s)."""
    msq = np.mean(errors * errors, axis=0)
    width = max(3, errors.shape[1] // 8)
    return np.maximum(np.sqrt(_smooth(msq, width)), floor)


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


def _coverage(z_train: np.ndarray, z_test: np.ndarray, level: float) -> float:
    n = len(z_train)
    pos = np.arange(1, n + 1) / (n + 1)
    lo, hi = np.interp([(1 - level) / 2, (1 + level) / 2], pos, z_train)
    return float(np.mean((z_test >= lo) & (z_test <= hi)))


def calibrate(
    errors: np.ndarray, levels: tuple[float, ...], floor: float
) -> Calibration:
    """Calibrate from backtest ``errors`` (origins x steps, actual - forecast)."""
    scale = step_scale(errors, floor)
    z = _z_pool(errors, scale)
    zz = errors / scale[None, :]
    num = float(np.sum(zz[:, 1:] * zz[:, :-1])) if zz.shape[1] > 1 else 0.0
    den = float(np.sum(zz[:, :-1] ** 2)) if zz.shape[1] > 1 else 0.0
    rho = float(np.clip(num / den, 0.0, 0.99)) if den > 0 else 0.0
    coverage: dict[float, float] = {}
    k = errors.shape[0]
    for lv in levels:
        hits = []
        for i in range(k):
            train = np.delete(errors, i, axis=0)
            s = step_scale(train, floor)
            hits.append(_coverage(_z_pool(train, s), errors[i] / s, lv))
        coverage[float(lv)] = float(np.mean(hits))
    return Calibration(scale, z, rho, coverage)


def gaussian_calibration(sigma_h: np.ndarray, widen: float, rho: float = 0.9) -> Calibration:
    """Model-based Gaussian intervals, widened by ``widen`` (too little data to backtest)."""
    return Calibration(np.asarray(sigma_h) * widen, normal_z_sample(), rho, {})
