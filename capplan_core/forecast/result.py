"""The forecast result: a predictive distribution of demand per planning window.

The distribution of window ``h`` is ``max(0, mean[h] + scale[h] * Z)`` where ``Z`` follows the
empirical distribution of *normalised* backtest errors (split-conformal prediction with
per-step scaling; Hyndman & Athanasopoulos, *Forecasting: Principles and Practice*, 3rd ed.,
§5.5 "Distributional forecasts and prediction intervals"). ``scale[h]`` already follows the
forecast level of window ``h`` (wider at peaks than at troughs; see ``intervals.py``). Bounds,
quantiles and simulated paths are all read from that one distribution, so they agree with
each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm


class NoHistoryError(ValueError):
    """The queue has no usable arrival-rate history, so nothing can be forecast.

    The planner should hold the current capacity and say so (docs/architecture.md, "Safety rules").
    """


def normal_z_sample(n: int = 199) -> np.ndarray:
    """Standard-normal quantiles at the plotting positions i/(n+1): a Gaussian fallback."""
    return np.asarray(norm.ppf(np.arange(1, n + 1) / (n + 1)), dtype=float)


@dataclass(frozen=True)
class ForecastResult:
    """Forecast of one queue's arrival rate (jobs/s) per window (see docs/CONTRACTS.md).

    ``scale``, ``z_sorted`` and ``path_correlation`` describe the predictive distribution;
    ``bounds`` holds its central intervals at the requested levels.
    """

    queue: str
    model: str
    interval_s: float
    timestamps: pd.DatetimeIndex
    mean: np.ndarray
    bounds: dict[float, tuple[np.ndarray, np.ndarray]]
    selection: list[dict[str, Any]]
    recent_anomaly: bool
    anomalies: list[pd.Timestamp]
    notes: list[str]
    scale: np.ndarray = field(default_factory=lambda: np.zeros(0))
    z_sorted: np.ndarray = field(default_factory=normal_z_sample)
    path_correlation: float = 0.0
    # windows whose error distribution rests on thin evidence (a switch day, the first
    # hours after a closed period, a level the nowcast is correcting): pooled sizing takes
    # no extra risk there (issue 22); None: none flagged
    uncertain: np.ndarray | None = None
    # the recent anomaly (when ``recent_anomaly``), with its numbers: what a person asked to
    # approve instead of auto is told (issue 21)
    anomaly_note: str | None = None

    def _z_quantile(self, q: np.ndarray | float) -> np.ndarray:
        z = self.z_sorted
        n = len(z)
        # plotting positions i/(n+1): a conformal-style finite-sample correction
        pos = np.arange(1, n + 1) / (n + 1)
        return np.asarray(np.interp(q, pos, z), dtype=float)

    def quantile(self, q: float) -> np.ndarray:
        """Demand (jobs/s) at quantile ``q`` in (0, 1) of each window, never negative."""
        if not 0.0 < q < 1.0:
            raise ValueError(f"quantile q must be in (0, 1), got {q!r}")
        scale = self.scale if len(self.scale) == len(self.mean) else np.zeros_like(self.mean)
        return np.maximum(self.mean + scale * float(self._z_quantile(q)), 0.0)

    def simulate(self, n_paths: int, rng: np.random.Generator) -> np.ndarray:
        """Demand paths (n_paths, n_windows) in jobs/s, consistent with ``quantile``.

        A Gaussian AR(1) copula gives each path the serial correlation seen in backtest errors;
        its marginals are mapped through the same error distribution as the bounds.
        """
        if n_paths < 1:
            raise ValueError(f"n_paths must be >= 1, got {n_paths!r}")
        n = len(self.mean)
        rho = float(np.clip(self.path_correlation, 0.0, 0.995))
        eps = rng.standard_normal((n_paths, n))
        g = np.empty_like(eps)
        if n:
            g[:, 0] = eps[:, 0]
            innov = np.sqrt(1.0 - rho * rho)
            for h in range(1, n):
                g[:, h] = rho * g[:, h - 1] + innov * eps[:, h]
        u = np.clip(norm.cdf(g), 1e-9, 1 - 1e-9)
        scale = self.scale if len(self.scale) == n else np.zeros(n)
        paths = self.mean[None, :] + scale[None, :] * self._z_quantile(u)
        return np.asarray(np.maximum(paths, 0.0))

    def to_frame(self) -> pd.DataFrame:
        """One row per window: ``mean`` and ``lower_NN``/``upper_NN`` per level (jobs/s)."""
        data: dict[str, np.ndarray] = {"mean": self.mean}
        for level, (lo, hi) in sorted(self.bounds.items()):
            tag = f"{round(level * 100):d}"
            data[f"lower_{tag}"] = lo
            data[f"upper_{tag}"] = hi
        return pd.DataFrame(data, index=self.timestamps)


def central_bounds(
    mean: np.ndarray, scale: np.ndarray, z_sorted: np.ndarray, levels: tuple[float, ...]
) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """Central intervals per level from the predictive distribution above.

    When backtests show a one-sided bias, the interval may not straddle the point forecast;
    it is then stretched to include it (so lower <= mean <= upper always holds).
    """
    probe = ForecastResult(
        queue="",
        model="",
        interval_s=1.0,
        timestamps=pd.DatetimeIndex([]),
        mean=mean,
        bounds={},
        selection=[],
        recent_anomaly=False,
        anomalies=[],
        notes=[],
        scale=scale,
        z_sorted=z_sorted,
    )
    out = {}
    for lv in levels:
        lo, hi = probe.quantile((1 - lv) / 2), probe.quantile((1 + lv) / 2)
        out[float(lv)] = (np.minimum(lo, mean), np.maximum(hi, mean))
    return out
