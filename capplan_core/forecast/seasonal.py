"""Seasonal models: fast multi-seasonal decomposition + ETS, multiplicative Holt-Winters, MSTL.

``ProfileEts`` ("mstl") is the MSTL idea of Hyndman & Athanasopoulos, *FPP3* §3.6 and §13.1
("STL with multiple seasonal periods", forecasting the seasonally adjusted series with ETS and
the seasonal components with a seasonal naive method), made cheap: each seasonal component is a
recency-weighted mean per slot of the detrended series, smoothed around the cycle, estimated by
backfitting on the planning-interval series. A damped-trend ETS then forecasts the seasonally
adjusted series. ``MstlStatsmodels`` runs statsmodels' LOESS-based MSTL instead: the accuracy
reference the fast model is benchmarked against (bench/bench_forecast.py).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from capplan_core.forecast.ets import fit_ets, run_filter
from capplan_core.forecast.models import ForecastModel

HALF_LIFE_DAYS = 7.0  # older cycles count half as much per week
MIN_MUL_PROFILE = 0.05  # multiplicative only if no slot falls below 5% of the mean


def _circular_smooth(profile: np.ndarray, width: int) -> np.ndarray:
    if width <= 1:
        return profile
    k = np.ones(width) / width
    pad = width // 2
    ext = np.concatenate([profile[-pad:], profile, profile[:pad]])
    return np.convolve(ext, k, mode="valid")[: len(profile)]


def seasonal_components(
    y: np.ndarray,
    periods: list[int],
    day_steps: int,
    *,
    multiplicative: bool = False,
    iterations: int = 2,
) -> list[np.ndarray]:
    """One profile per period (length = period), by backfitting around a moving-average
    trend (classical decomposition, H&A §3.4, iterated as in MSTL §3.6). Additive profiles
    have mean 0; multiplicative ones (ratios to the trend) have mean 1."""
    n = len(y)
    t = np.arange(n)
    weights = 0.5 ** ((n - 1 - t) / (HALF_LIFE_DAYS * day_steps))
    neutral = 1.0 if multiplicative else 0.0
    profiles = [np.full(p, neutral) for p in periods]
    window = max(periods)

    def combine(parts: list[np.ndarray]) -> np.ndarray:
        out = np.full(n, neutral)
        for prof, p in zip(parts, periods, strict=True):
            out = out * prof[t % p] if multiplicative else out + prof[t % p]
        return out

    for _ in range(iterations):
        total = combine(profiles)
        base = y / total if multiplicative else y - total
        trend = (
            pd.Series(base)
            .rolling(window, center=True, min_periods=window)
            .mean()
            .bfill()
            .ffill()
            .to_numpy()
        )
        for i, p in enumerate(periods):
            others = combine(
                [q if j != i else np.full(len(q), neutral) for j, q in enumerate(profiles)]
            )
            d = y / np.maximum(trend * others, 1e-12) if multiplicative else y - trend - others
            num = np.bincount(t % p, weights=d * weights, minlength=p)
            den = np.bincount(t % p, weights=weights, minlength=p)
            prof = num / np.maximum(den, 1e-12)
            # the daily shape is sharp; the weekly correction rests on few cycles, so it is
            # smoothed over about 45 minutes (wider blurs the weekday/weekend switch)
            width = 1 if p == day_steps else max(1, day_steps // 32) | 1
            prof = prof / prof.mean() if multiplicative else prof - prof.mean()
            profiles[i] = _circular_smooth(prof, width)
    return profiles


class ProfileEts(ForecastModel):
    """Daily (+ weekly) seasonal profiles, damped-trend ETS on the seasonally adjusted series."""

    name, family = "mstl", "seasonal"

    def periods(self, n: int) -> list[int]:
        out = [m for m in (self.day_steps, self.week_steps) if m and n >= 2 * m]
        return out or ([self.day_steps] if self.day_steps and n >= self.day_steps else [])

    def _decompose(self, y: np.ndarray) -> np.ndarray:
        self.per = self.periods(len(y))
        self.multiplicative = False
        if not self.per:
            self.profiles: list[np.ndarray] = []
            return y
        day = int(self.day_steps or self.per[0])
        # queue traffic is usually multiplicative (the weekend scales the whole day, growth
        # scales the peaks): use ratios when the rates allow, i.e. no near-empty slots
        if np.min(y) >= 0 and np.mean(y) > 0:
            with np.errstate(invalid="ignore", divide="ignore"):  # empty slots: rejected below
                prof = seasonal_components(y, self.per, day, multiplicative=True)
            if min(float(np.min(p)) for p in prof) >= MIN_MUL_PROFILE:
                self.profiles, self.multiplicative = prof, True
                return np.asarray(y / self._seasonal(np.arange(len(y))))
        self.profiles = seasonal_components(y, self.per, day)
        return np.asarray(y - self._seasonal(np.arange(len(y))))

    def _seasonal(self, t: np.ndarray) -> np.ndarray:
        if self.multiplicative:
            out = np.ones(len(t))
            for p, m in zip(self.profiles, self.per, strict=True):
                out = out * p[t % m]
            return out
        return sum(
            (p[t % m] for p, m in zip(self.profiles, self.per, strict=True)), np.zeros(len(t))
        )

    def fit(self, y: np.ndarray) -> ProfileEts:
        adjusted = self._decompose(y)
        self.ets = fit_ets(adjusted, trend=True)
        self.sigma, self.n_obs = self.ets.sigma, len(y)
        return self

    def refit(self, y: np.ndarray) -> ProfileEts:
        if not hasattr(self, "ets"):
            return self.fit(y)
        adjusted = self._decompose(y)
        e = self.ets
        self.ets = run_filter(adjusted, e.alpha, e.beta, e.phi, 0.0, 0)
        self.sigma, self.n_obs = self.ets.sigma, len(y)
        return self

    def _mean(self, horizon: int) -> np.ndarray:
        seas = self._seasonal(self.n_obs + np.arange(horizon))
        level = self.ets.forecast(horizon)
        return np.asarray(level * seas if self.multiplicative else level + seas)

    def sigma_h(self, horizon: int) -> np.ndarray:
        base = super().sigma_h(horizon)
        if self.multiplicative:  # errors of the adjusted series, back in jobs/s
            return np.asarray(base * self._seasonal(self.n_obs + np.arange(horizon)))
        return base

    def error_weights(self, horizon: int) -> np.ndarray:
        return self.ets.error_weights(horizon)


class HoltWintersMul(ForecastModel):
    """Holt-Winters' multiplicative damped method, daily season (H&A §8.3), by statsmodels.

    Needs strictly positive data; raises ``ValueError`` otherwise (the engine falls back).
    """

    name, family = "holt_winters_mul", "seasonal"

    def _model(self, y: np.ndarray):  # type: ignore[no-untyped-def]
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        if np.min(y) <= 0:
            raise ValueError("multiplicative Holt-Winters needs strictly positive rates")
        if not self.day_steps or len(y) < 2 * self.day_steps:
            raise ValueError("multiplicative Holt-Winters needs two full days of history")
        return ExponentialSmoothing(
            y,
            trend="add",
            damped_trend=True,
            seasonal="mul",
            seasonal_periods=self.day_steps,
            initialization_method="heuristic",
        )

    def _store(self, res, y: np.ndarray) -> HoltWintersMul:  # type: ignore[no-untyped-def]
        self.res, self.n_obs = res, len(y)
        self.params = {
            k: res.params[k]
            for k in ("smoothing_level", "smoothing_trend", "smoothing_seasonal", "damping_trend")
        }
        resid = np.asarray(res.resid)[2 * int(self.day_steps or 0) :]
        self.sigma = float(np.sqrt(np.mean(resid**2)))
        return self

    def fit(self, y: np.ndarray) -> HoltWintersMul:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self._store(self._model(y).fit(), y)

    def refit(self, y: np.ndarray) -> HoltWintersMul:
        if not hasattr(self, "params"):
            return self.fit(y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self._store(self._model(y).fit(optimized=False, **self.params), y)

    def _mean(self, horizon: int) -> np.ndarray:
        return np.asarray(self.res.forecast(horizon), dtype=float)

    def error_weights(self, horizon: int) -> np.ndarray:
        return np.full(max(horizon - 1, 0), float(self.params["smoothing_level"]))


class MstlStatsmodels(ProfileEts):
    """statsmodels' MSTL (LOESS, daily + weekly) + damped-trend ETS: the slow reference."""

    name = "mstl_statsmodels"

    def _decompose(self, y: np.ndarray) -> np.ndarray:
        from statsmodels.tsa.seasonal import MSTL

        self.per = self.periods(len(y))
        self.multiplicative = False
        if not self.per:
            self.profiles = []
            return y
        res = MSTL(y, periods=self.per if len(self.per) > 1 else self.per[0]).fit()
        seas = np.asarray(res.seasonal).reshape(len(y), -1)
        # forecast each component by its last cycle (seasonal naive, H&A §13.1)
        self.profiles = []
        t = np.arange(len(y))
        for i, m in enumerate(self.per):
            prof = np.zeros(m)
            prof[t[-m:] % m] = seas[-m:, i]
            self.profiles.append(prof)
        return np.asarray(res.trend + res.resid, dtype=float)
