"""Which models to try for a series, and automatic selection by backtest MASE.

Fallback rules (docs/architecture.md, "Algorithms and correctness"; short history):
less than a day of history -> EWMA only, with widened intervals; less than two full days ->
non-seasonal models; weekly terms only with two full weeks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from capplan_core.forecast.combination import SIZES, Combination, parse_combination
from capplan_core.forecast.evaluation import (
    EvaluationPlan,
    EvaluationScore,
    evaluate_candidate,
    mase_scale,
    plan_evaluation,
)
from capplan_core.forecast.intervals import Calibration, calibrate, gaussian_calibration
from capplan_core.forecast.models import (
    Ewma,
    ForecastModel,
    Holt,
    HoltWinters,
    MovingAverage,
    Naive,
    SeasonalNaive,
)
from capplan_core.forecast.seasonal import HoltWintersMul, MstlStatsmodels, ProfileEts

MODELS: dict[str, type[ForecastModel]] = {
    cls.name: cls
    for cls in (
        Naive,
        SeasonalNaive,
        MovingAverage,
        Ewma,
        Holt,
        HoltWinters,
        HoltWintersMul,
        ProfileEts,
        MstlStatsmodels,
    )
}
SEASONAL_AUTO = ("seasonal_naive", "moving_average", "ewma", "holt", "holt_winters", "mstl")
LEVEL_AUTO = ("naive", "moving_average", "ewma", "holt")
SHORT_WIDEN = 1.5  # interval widening when history is under a day
MAX_AUTO_HW_SEASON = 288  # auto skips Holt-Winters with longer seasons (slow to fit)


def model_family(name: str) -> str:
    """A model's family; a combination's is its members' when they share one, else the
    family of any seasonal member ("seasonal"), else "combination"."""
    members = parse_combination(name)
    if not members:
        return MODELS[name].family
    families = {MODELS[m].family for m in members}
    if len(families) == 1:
        return families.pop()
    return "seasonal" if "seasonal" in families else "combination"


@dataclass
class Choice:
    """The selected model (fitted on all data), its calibration and the selection record."""

    model: ForecastModel
    calibration: Calibration
    selection: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def candidate_names(
    requested: str, n: int, day_steps: int | None, week_steps: int | None, seasonal: bool = True
) -> tuple[list[str], list[str]]:
    """Candidate model names for ``n`` steps of history, and notes on any fallback.

    ``seasonal`` False (an empty ``seasonality`` in the spec) keeps ``auto`` non-seasonal.
    """
    notes: list[str] = []
    seasonal_ok = bool(day_steps) and n >= 2 * int(day_steps or 0)
    short = day_steps is not None and n < day_steps
    members = parse_combination(requested)
    if members and not all(m in MODELS for m in members):
        raise ValueError(f"model {requested!r}: unknown member model")
    if members and not short:
        if any(MODELS[m].family == "seasonal" for m in members) and not seasonal_ok:
            notes.append(f"model {requested!r} needs two full days of history: using holt")
            return ["holt"], notes
        return members, notes
    if short:
        if requested not in ("auto", "ewma"):
            notes.append(f"model {requested!r} needs more history: using ewma")
        notes.append("less than a day of history: EWMA with widened intervals")
        return ["ewma"], notes
    if requested == "auto":
        names = list(SEASONAL_AUTO if seasonal_ok and seasonal else LEVEL_AUTO)
        if not seasonal_ok and day_steps and seasonal:
            notes.append("less than two full days of history: non-seasonal models only")
        return names, notes
    if MODELS[requested].family == "seasonal" and not seasonal_ok:
        notes.append(f"model {requested!r} needs two full days of history: using holt")
        return ["holt"], notes
    return [requested], notes


def _min_train(names: list[str], n: int, day_steps: int | None, week_steps: int | None) -> int:
    seasonal = any(MODELS[m].family == "seasonal" for m in names)
    if seasonal and week_steps and n >= 2 * week_steps + (day_steps or 0):
        return 2 * week_steps
    if seasonal and day_steps:
        return 2 * day_steps
    return max(8, n // 3)


def _entry(score: EvaluationScore, cal: Calibration | None) -> dict[str, Any]:
    return {
        "model": score.model,
        "mase": round(score.mase, 4),
        "smape": round(score.smape, 3),
        "coverage": {lv: round(c, 3) for lv, c in (cal.coverage if cal else {}).items()},
        "level_weight": cal.level_weight if cal else 0.0,
    }


def _window(plan: EvaluationPlan, stamp: Callable[[int], str]) -> dict[str, Any]:
    return {
        "origins": [stamp(o) for o in plan.origins],
        "horizon_steps": plan.horizon_steps,
        "start": stamp(plan.origins[0]),
        "end": stamp(plan.origins[-1] + plan.horizon_steps - 1),
    }


def choose(
    requested: str,
    y: np.ndarray,
    *,
    horizon: int,
    day_steps: int | None,
    week_steps: int | None,
    levels: tuple[float, ...],
    floor: float,
    stamp: Callable[[int], str],
    seasonal: bool = True,
) -> Choice:
    """Backtest the candidates, pick the lowest MASE, calibrate its intervals on its errors."""
    n = len(y)
    names, notes = candidate_names(requested, n, day_steps, week_steps, seasonal)
    if requested == "auto" and (day_steps or 0) > MAX_AUTO_HW_SEASON and "holt_winters" in names:
        names.remove("holt_winters")
        notes.append(f"holt_winters skipped: a {day_steps}-step season is too long to fit fast")
    short = names == ["ewma"] and bool(day_steps) and n < int(day_steps or 0)

    def make(name: str) -> Callable[[], ForecastModel]:
        return lambda: MODELS[name](day_steps, week_steps)

    plan = (
        plan_evaluation(n, horizon, _min_train(names, n, day_steps, week_steps), day_steps)
        if n >= 6
        else None
    )
    if plan is None:
        model = _fit_first(names, y, make, notes)
        notes.append("too little history to backtest: model-based intervals, widened")
        cal = gaussian_calibration(model.sigma_h(max(n, 1)), SHORT_WIDEN)
        return Choice(model, cal, [], notes)
    scale = mase_scale(y[: plan.origins[0]], int(day_steps or 1))
    scores: list[tuple[EvaluationScore, Calibration]] = []
    selection: list[dict[str, Any]] = []
    for name in names:
        try:
            sc = evaluate_candidate(make(name), y, plan, scale)
        except (ValueError, np.linalg.LinAlgError, FloatingPointError) as err:
            selection.append({"model": name, "error": str(err)})
            continue
        cal = calibrate(sc.errors, levels, floor, sc.forecasts)
        scores.append((sc, cal))
        selection.append(_entry(sc, cal))
    if not scores:
        notes.append("every candidate failed: moving-average fallback")
        model = MovingAverage(day_steps, week_steps).fit(y)
        return Choice(model, gaussian_calibration(model.sigma_h(n), SHORT_WIDEN), selection, notes)
    best, best_cal = min(scores, key=lambda s: s[0].mase)
    forced = len(names) if parse_combination(requested) else None
    for sc in _combinations([s[0] for s in scores], scale, forced):
        cal = calibrate(sc.errors, levels, floor, sc.forecasts)
        selection.append(_entry(sc, cal))
        if sc.mase < best.mase or forced:
            best, best_cal = sc, cal
    window = _window(plan, stamp)
    for e in selection:
        e["chosen"] = e["model"] == best.model
        e["backtest"] = window
    # the parameters estimated for the backtest (on data before the first origin) are kept;
    # re-running the model over all of the data updates its states (and profiles)
    model = best.fitted.refit(y)
    if short:
        best_cal = replace(best_cal, scale=best_cal.scale * SHORT_WIDEN)
    return Choice(model, best_cal, selection, notes)


def _combinations(
    scores: list[EvaluationScore], scale: float, forced: int | None
) -> list[EvaluationScore]:
    """The mean of the best 2 and 3 candidates, scored on the same origins (combination.py);
    with ``forced`` only the mean of that many (a combination asked for by name)."""
    # a combination asked for by name keeps its members' order (and so its name)
    ranked = list(scores) if forced else sorted(scores, key=lambda s: s.mase)
    actual = ranked[0].errors + ranked[0].forecasts
    out = []
    for k in (forced,) if forced else SIZES:
        if k is None or len(ranked) < k or k < 2:
            continue
        top = ranked[:k]
        fc = np.mean([s.forecasts for s in top], axis=0)
        err = actual - fc
        mae = float(np.mean(np.abs(err)))
        denom = np.abs(actual) + np.abs(fc)
        with np.errstate(invalid="ignore", divide="ignore"):
            sm = np.where(denom > 0, 2 * np.abs(err) / denom, 0.0)
        safe = scale if np.isfinite(scale) and scale > 0 else max(mae, 1e-12)
        model = Combination([s.fitted for s in top])
        out.append(
            EvaluationScore(
                model.name,
                model,
                err,
                fc,
                model.sigma_h(err.shape[1]),
                mae / safe,
                float(100 * np.mean(sm)),
            )
        )
    return out


def _fit_first(
    names: list[str],
    y: np.ndarray,
    make: Callable[[str], Callable[[], ForecastModel]],
    notes: list[str],
) -> ForecastModel:
    for name in names:
        try:
            return make(name)().fit(y)
        except (ValueError, np.linalg.LinAlgError) as err:
            notes.append(f"{name} failed ({err})")
    return MovingAverage().fit(y)
