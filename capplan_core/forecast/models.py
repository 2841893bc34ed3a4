"""Forecast models behind one small interface: ``fit`` / ``predict`` / ``simulate``.

Every model works on a gap-free numpy series at the planning interval (jobs/s) and knows its
season lengths in steps. Forecast errors follow the innovations form of Hyndman &
Athanasopoulos, *FPP3* §5.5 and Table 8.8: ``e_h = eps_h + sum_{j<h} c_j eps_{h-j}``, so
``predict`` (Gaussian intervals) and ``simulate`` (paths) describe the same distribution.
The engine replaces these model-based intervals with backtest-calibrated ones.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.signal import fftconvolve
from scipy.stats import norm

from capplan_core.forecast.ets import EtsFit, fit_ets, run_filter


@dataclass(frozen=True)
class Prediction:
    """Point forecast and central intervals (level -> (lower, upper)), jobs/s, never < 0."""

    mean: np.ndarray
    bounds: dict[float, tuple[np.ndarray, np.ndarray]]


class ForecastModel(ABC):
    """Base class: subclasses implement ``fit``, ``_mean`` and the error weights."""

    name: ClassVar[str]
    family: ClassVar[str]  # "level" | "trend" | "seasonal"

    def __init__(self, day_steps: int | None = None, week_steps: int | None = None) -> None:
        self.day_steps = day_steps
        self.week_steps = week_steps
        self.sigma = 0.0  # one-step error standard deviation, jobs/s
        self.n_obs = 0

    @abstractmethod
    def fit(self, y: np.ndarray) -> ForecastModel:
        """Estimate parameters and states from ``y`` (jobs/s per step)."""

    def refit(self, y: np.ndarray) -> ForecastModel:
        """Re-run on new data keeping the fitted parameters (cheap; used by backtests)."""
        return self.fit(y)

    @abstractmethod
    def _mean(self, horizon: int) -> np.ndarray: ...

    def error_weights(self, horizon: int) -> np.ndarray:
        """c_1..c_{horizon-1} of the innovations form (default: errors do not accumulate)."""
        return np.zeros(max(horizon - 1, 0))

    def sigma_h(self, horizon: int) -> np.ndarray:
        """Model-based standard deviation of the h-step error, h = 1..horizon."""
        c = self.error_weights(horizon)
        return self.sigma * np.sqrt(1.0 + np.concatenate([[0.0], np.cumsum(c * c)]))

    def forecast_mean(self, horizon: int) -> np.ndarray:
        return np.asarray(np.maximum(self._mean(horizon), 0.0))

    def predict(self, horizon: int, levels: tuple[float, ...] = (0.8, 0.95)) -> Prediction:
        """Mean and Gaussian central intervals at each level."""
        mean = self.forecast_mean(horizon)
        sd = self.sigma_h(horizon)
        bounds = {}
        for lv in levels:
            z = float(norm.ppf(0.5 + lv / 2))
            bounds[float(lv)] = (np.maximum(mean - z * sd, 0.0), mean + z * sd)
        return Prediction(mean, bounds)

    def simulate(self, horizon: int, n_paths: int, rng: np.random.Generator) -> np.ndarray:
        """Demand paths (n_paths, horizon): mean plus accumulated Gaussian innovations."""
        eps = rng.standard_normal((n_paths, horizon)) * self.sigma
        kernel = np.concatenate([[1.0], self.error_weights(horizon)])
        err = fftconvolve(eps, kernel[None, :], axes=1)[:, :horizon]
        return np.asarray(np.maximum(self._mean(horizon)[None, :] + err, 0.0))


def _rms(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(np.sqrt(np.mean(x * x))) if len(x) else 0.0


class Naive(ForecastModel):
    """Last value carried forward (random walk, H&A §5.2)."""

    name, family = "naive", "level"

    def fit(self, y: np.ndarray) -> Naive:
        self.last, self.n_obs = float(y[-1]), len(y)
        self.sigma = _rms(np.diff(y))
        return self

    def _mean(self, horizon: int) -> np.ndarray:
        return np.full(horizon, self.last)

    def error_weights(self, horizon: int) -> np.ndarray:
        return np.ones(max(horizon - 1, 0))


class SeasonalNaive(ForecastModel):
    """Value one season earlier (H&A §5.2); weekly season when two weeks are known, else daily."""

    name, family = "seasonal_naive", "seasonal"

    def period(self, n: int) -> int:
        for m in (self.week_steps, self.day_steps):
            if m and n >= 2 * m:
                return m
        return self.day_steps if self.day_steps and n >= self.day_steps else 1

    def fit(self, y: np.ndarray) -> SeasonalNaive:
        self.m, self.n_obs = self.period(len(y)), len(y)
        self.tail = y[-self.m :].copy()
        self.sigma = _rms(y[self.m :] - y[: -self.m]) if len(y) > self.m else _rms(np.diff(y))
        return self

    def _mean(self, horizon: int) -> np.ndarray:
        return self.tail[np.arange(horizon) % self.m]

    def error_weights(self, horizon: int) -> np.ndarray:
        j = np.arange(1, horizon)
        return np.asarray((j % self.m == 0).astype(float))


class MovingAverage(ForecastModel):
    """Mean of the last few hours, carried forward (the engine's fallback)."""

    name, family = "moving_average", "level"

    def fit(self, y: np.ndarray) -> MovingAverage:
        w = max(1, self.day_steps // 8) if self.day_steps else 12
        self.window, self.n_obs = min(w, len(y)), len(y)
        self.level = float(np.mean(y[-self.window :]))
        if len(y) > self.window:
            csum = np.cumsum(np.concatenate([[0.0], y]))
            ma = (csum[self.window :] - csum[: -self.window]) / self.window
            self.sigma = _rms(y[self.window :] - ma[:-1])
        else:
            self.sigma = float(np.std(y))
        return self

    def _mean(self, horizon: int) -> np.ndarray:
        return np.full(horizon, self.level)


class _EtsModel(ForecastModel):
    """Additive exponential smoothing fitted by ``capplan_core.forecast.ets``."""

    trend: ClassVar[bool] = False
    seasonal: ClassVar[bool] = False

    def _m(self) -> int:
        return int(self.day_steps or 0) if self.seasonal else 0

    def fit(self, y: np.ndarray) -> _EtsModel:
        self.ets: EtsFit = fit_ets(y, trend=self.trend, m=self._m())
        self.sigma, self.n_obs = self.ets.sigma, len(y)
        return self

    def refit(self, y: np.ndarray) -> _EtsModel:
        if not hasattr(self, "ets"):
            return self.fit(y)
        e = self.ets
        self.ets = run_filter(y, e.alpha, e.beta, e.phi, e.gamma, e.m)
        self.sigma, self.n_obs = self.ets.sigma, len(y)
        return self

    def _mean(self, horizon: int) -> np.ndarray:
        return self.ets.forecast(horizon)

    def error_weights(self, horizon: int) -> np.ndarray:
        return self.ets.error_weights(horizon)


class Ewma(_EtsModel):
    """Simple exponential smoothing, ETS(A,N,N) (H&A §8.1)."""

    name, family = "ewma", "level"


class Holt(_EtsModel):
    """Holt's damped-trend method, ETS(A,Ad,N) (H&A §8.2)."""

    name, family, trend = "holt", "trend", True


class HoltWinters(_EtsModel):
    """Holt-Winters' additive damped method with a daily season, ETS(A,Ad,A) (H&A §8.3)."""

    name, family, trend, seasonal = "holt_winters", "seasonal", True, True
