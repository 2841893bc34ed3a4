"""Rolling-origin evaluation of forecast candidates by MASE, used by model selection
(Hyndman & Athanasopoulos, *FPP3* §5.8 "Evaluating point forecast accuracy" and §5.10
"Time series cross-validation"). Replaying capacity plans over history is a different thing:
that is :mod:`capplan_core.backtest`.

Each candidate's parameters are estimated once, on the history before the earliest origin;
at every origin the model is re-run on the data up to it with those parameters (``refit``),
so the evaluation costs one optimisation plus a few filter passes per candidate and no
parameter ever sees the period it is scored on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from capplan_core.forecast.models import ForecastModel

MAX_ORIGINS = 16


@dataclass(frozen=True)
class EvaluationPlan:
    """Forecast origins (index of the first forecast step) and the steps scored at each."""

    origins: list[int]
    horizon_steps: int


@dataclass(frozen=True)
class EvaluationScore:
    """One candidate's evaluation: errors (origins x steps, jobs/s) and accuracy scores."""

    model: str
    fitted: ForecastModel  # refitted at the last origin, parameters from the first
    errors: np.ndarray
    forecasts: np.ndarray
    sigma_h: np.ndarray  # model-based h-step standard deviation at the last origin
    mase: float
    smape: float


def plan_evaluation(
    n: int, horizon: int, min_train: int, day_steps: int | None, max_origins: int = MAX_ORIGINS
) -> EvaluationPlan | None:
    """Origins over the most recent history; None if fewer than two fit.

    The scored horizon is capped at two days (longer horizons extrapolate the error growth),
    origins are half a scored horizon apart so together they sweep at least part of a day.
    """
    cap = 2 * day_steps if day_steps else horizon
    h = max(1, min(horizon, cap))
    avail = n - min_train
    if avail < h + 1:
        h = max(1, avail // 2)
    if avail < h + 1:
        return None
    spacing = max(1, h // 4)
    k = min(max_origins, 1 + (avail - h) // spacing)
    if k < 2:
        return None
    origins = sorted(n - h - i * spacing for i in range(k))
    return EvaluationPlan(origins, h)


def mase_scale(y: np.ndarray, m: int) -> float:
    """In-sample MAE of the seasonal naive method (m = 1: naive), the MASE denominator."""
    m = m if 0 < m < len(y) else 1
    if len(y) <= m:
        return float("nan")
    d = np.abs(y[m:] - y[:-m])
    return float(np.mean(d))


def evaluate_candidate(
    make: Callable[[], ForecastModel], y: np.ndarray, plan: EvaluationPlan, scale: float
) -> EvaluationScore:
    """Score one candidate at every origin of ``plan``; ``scale`` is the MASE denominator."""
    h = plan.horizon_steps
    model = make().fit(y[: plan.origins[0]])
    fc = np.empty((len(plan.origins), h))
    for i, o in enumerate(plan.origins):
        if i:
            model.refit(y[:o])
        fc[i] = model.forecast_mean(h)
    actual = np.stack([y[o : o + h] for o in plan.origins])
    err = actual - fc
    mae = float(np.mean(np.abs(err)))
    denom = np.abs(actual) + np.abs(fc)
    with np.errstate(invalid="ignore", divide="ignore"):
        sm = np.where(denom > 0, 2 * np.abs(err) / denom, 0.0)
    safe_scale = scale if np.isfinite(scale) and scale > 0 else max(mae, 1e-12)
    return EvaluationScore(
        model.name, model, err, fc, model.sigma_h(h), mae / safe_scale, float(100 * np.mean(sm))
    )
