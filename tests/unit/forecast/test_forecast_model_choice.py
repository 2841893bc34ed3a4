"""Synthetic series with known structure: ``auto`` picks a model of the right family."""

from __future__ import annotations

import numpy as np
from helpers_forecast import seasonal_rates, series

from capplan_core.forecast import forecast_queue
from capplan_core.forecast.selection import model_family
from capplan_core.policy import ForecastSpec

SPEC = ForecastSpec(horizon_hours=6, seasonality=["daily", "weekly"])


def _family(name: str) -> str:
    return model_family(name)


def test_pure_level_picks_a_level_model() -> None:
    rng = np.random.default_rng(3)
    res = forecast_queue(series(10 + rng.normal(0, 0.5, 3 * 96)), SPEC, queue="q")
    assert _family(res.model) == "level", res.selection
    assert abs(float(np.mean(res.mean)) - 10) < 0.5


def test_trend_picks_holt() -> None:
    rng = np.random.default_rng(4)
    y = 5 + 0.05 * np.arange(300) + rng.normal(0, 0.2, 300)
    res = forecast_queue(series(y), SPEC.model_copy(update={"seasonality": []}), queue="q")
    assert _family(res.model) == "trend", res.selection
    assert res.mean[-1] > res.mean[0]


def test_daily_season_picks_a_seasonal_model() -> None:
    res = forecast_queue(seasonal_rates(6, weekly=False), SPEC, queue="q")
    assert _family(res.model) == "seasonal", res.selection


def test_daily_and_weekly_season_picks_a_multi_seasonal_model() -> None:
    hist = seasonal_rates(26, weekly=True)  # ends on a Friday: the weekend comes next
    res = forecast_queue(hist, SPEC.model_copy(update={"horizon_hours": 24}), queue="q")
    assert res.model in ("mstl", "seasonal_naive"), res.selection
    # Saturday daytime must be forecast at the weekend level, not Friday's
    assert float(np.max(res.mean)) < 0.7 * float(np.max(hist.iloc[-96:]))


def test_selection_reports_every_candidate_and_the_backtest_window() -> None:
    res = forecast_queue(seasonal_rates(15, weekly=True), SPEC, queue="q")
    names = [e["model"] for e in res.selection]
    assert {"seasonal_naive", "ewma", "holt", "holt_winters", "mstl"} <= set(names)
    chosen = [e for e in res.selection if e.get("chosen")]
    assert len(chosen) == 1 and chosen[0]["model"] == res.model
    for e in res.selection:
        assert e["mase"] >= 0 and set(e["coverage"]) == {0.8, 0.95}
        assert len(e["backtest"]["origins"]) >= 2 and e["backtest"]["horizon_steps"] >= 1


def test_backtest_coverage_is_near_nominal_for_the_chosen_model() -> None:
    res = forecast_queue(seasonal_rates(21, weekly=True), SPEC, queue="q")
    cov = next(e for e in res.selection if e["chosen"])["coverage"]
    assert abs(cov[0.8] - 0.8) < 0.08 and abs(cov[0.95] - 0.95) < 0.05, cov


def test_a_combination_is_scored_like_a_model_and_asked_for_by_name() -> None:
    from capplan_core.forecast.combination import parse_combination

    hist = seasonal_rates(15, weekly=True)
    res = forecast_queue(hist, SPEC, queue="q")
    scored = {e["model"]: e for e in res.selection}
    combos = [m for m in scored if parse_combination(m)]
    assert len(combos) == 2 and {len(parse_combination(m) or []) for m in combos} == {2, 3}
    # the backtest reuses a chosen name between re-selections: the same members, combined
    spec = SPEC.model_copy(update={"model": "mean(mstl+seasonal_naive)"})
    again = forecast_queue(hist, spec, queue="q")
    assert again.model == "mean(mstl+seasonal_naive)"
    only = {
        k: forecast_queue(hist, SPEC.model_copy(update={"model": k}), queue="q").mean
        for k in ("mstl", "seasonal_naive")
    }
    # the mean of the two (the nowcast moves all three alike or not at all)
    np.testing.assert_allclose(again.mean, (only["mstl"] + only["seasonal_naive"]) / 2, rtol=0.05)
