"""Forecast combination: the equal-weight mean of the best candidates of the backtest.

Hyndman & Athanasopoulos, *FPP3* §13.4 ("Forecast combinations"): averaging the forecasts
of a few good methods is usually more accurate than the best of them alone, and equal
weights are hard to beat (the "forecast combination puzzle"). ``auto`` scores the mean of the
top two and top three candidates on the same backtest origins as the single models (no
refitting: the combined forecast at an origin is the mean of the members' forecasts there)
and keeps a combination only when its MASE is lower.

The combination's name lists its members, e.g. ``mean(mstl+holt_winters)``; passed back as a
forecast spec's model (the backtest reuses the chosen model between re-selections), the same
members are scored and combined again.
"""

from __future__ import annotations

import numpy as np

from capplan_core.forecast.models import ForecastModel

PREFIX, SEP = "mean(", "+"
SIZES = (2, 3)  # how many of the best candidates a combination averages


def combination_name(members: list[str]) -> str:
    return f"{PREFIX}{SEP.join(members)})"


def parse_combination(name: str) -> list[str] | None:
    """The member names of ``mean(a+b)``; None for a single model's name."""
    if not (name.startswith(PREFIX) and name.endswith(")")):
        return None
    members = name[len(PREFIX) : -1].split(SEP)
    return members if len(members) >= 2 and all(members) else None


class Combination(ForecastModel):
    """Equal-weight mean of fitted member models (jobs/s per step)."""

    family = "combination"

    def __init__(self, members: list[ForecastModel]) -> None:
        if len(members) < 2:
            raise ValueError("a combination needs at least two members")
        super().__init__(members[0].day_steps, members[0].week_steps)
        self.members = members
        self.name = combination_name([m.name for m in members])  # type: ignore[misc]
        self._update()

    def _update(self) -> None:
        self.n_obs = self.members[0].n_obs
        # the mean of errors is at most as spread as the mean of their spreads
        self.sigma = float(np.mean([m.sigma for m in self.members]))

    def fit(self, y: np.ndarray) -> Combination:
        for m in self.members:
            m.fit(y)
        self._update()
        return self

    def refit(self, y: np.ndarray) -> Combination:
        for m in self.members:
            m.refit(y)
        self._update()
        return self

    def _mean(self, horizon: int) -> np.ndarray:
        return np.asarray(np.mean([m.forecast_mean(horizon) for m in self.members], axis=0))

    def sigma_h(self, horizon: int) -> np.ndarray:
        return np.asarray(np.mean([m.sigma_h(horizon) for m in self.members], axis=0))

    def error_weights(self, horizon: int) -> np.ndarray:
        return np.asarray(np.mean([m.error_weights(horizon) for m in self.members], axis=0))
