"""forecast_queue: provisional EWMA baseline (being replaced by backtested selection)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from capplan_core.forecast.prep import fill_gaps, prepare_history
from capplan_core.forecast.result import ForecastResult, NoHistoryError, central_bounds
from capplan_core.policy import ForecastSpec


def forecast_queue(
    history: pd.Series, spec: ForecastSpec, *, queue: str, levels: tuple[float, ...] = (0.8, 0.95),
    start: pd.Timestamp | None = None, interval_s: float | None = None, seed: int = 0,
    exclude: pd.Series | None = None,
) -> ForecastResult:
    """Forecast arrival rate (jobs/s) per window over ``spec.horizon_hours``."""
    step_s = float(interval_s or spec.interval_minutes * 60)
    prep = prepare_history(history, step_s, exclude, spec.events)
    if len(prep.values) == 0:
        raise NoHistoryError(f"queue {queue!r}: no arrival-rate history to forecast from")
    y = fill_gaps(prep.values)
    alpha = 0.3
    level = y[0]
    resid = []
    for v in y[1:]:
        resid.append(v - level)
        level = alpha * v + (1 - alpha) * level
    sigma = float(np.std(resid)) if resid else max(abs(level) * 0.5, 1e-6)
    n = max(1, int(round(spec.horizon_hours * 3600 / step_s)))
    first = start if start is not None else prep.index[-1] + pd.Timedelta(seconds=step_s)
    ts = pd.date_range(first, periods=n, freq=pd.Timedelta(seconds=step_s))
    mean = np.full(n, max(level, 0.0))
    scale = sigma * np.sqrt(1 + alpha**2 * np.arange(n)) * 1.5
    z = np.asarray(np.sort(np.random.default_rng(seed).standard_normal(0)), dtype=float)
    from capplan_core.forecast.result import normal_z_sample
    z = normal_z_sample()
    return ForecastResult(
        queue=queue, model="ewma", interval_s=step_s, timestamps=ts, mean=mean,
        bounds=central_bounds(mean, scale, z, tuple(levels)), selection=[], recent_anomaly=False,
        anomalies=[], notes=["provisional EWMA baseline"], scale=scale, z_sorted=z,
        path_correlation=0.9,
    )
