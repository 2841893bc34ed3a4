"""Short, degenerate and messy history: a sensible forecast, never an exception."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from helpers_forecast import seasonal_rates, series

from capplan_core.forecast import ForecastResult, NoHistoryError, forecast_queue
from capplan_core.policy import CalendarEvent, ForecastSpec

SPEC = ForecastSpec(horizon_hours=6, seasonality=["daily", "weekly"])


def _sane(res: ForecastResult, n: int = 24) -> None:
    assert len(res.timestamps) == len(res.mean) == n
    assert np.all(np.isfinite(res.mean)) and np.all(res.mean >= 0)
    for lo, hi in res.bounds.values():
        assert np.all(lo <= res.mean + 1e-9) and np.all(hi >= res.mean - 1e-9)
        assert np.all(lo >= 0)
    assert res.timestamps.tz is not None


@pytest.mark.parametrize("hours", [1, 24, 36])
def test_short_history_gives_a_forecast(hours: int) -> None:
    hist = seasonal_rates(2, weekly=False).iloc[: hours * 4]
    res = forecast_queue(hist, SPEC, queue="q")
    _sane(res)
    if hours < 24:
        assert res.model == "ewma" and any("less than a day" in n for n in res.notes)
    elif hours == 36:  # 1.5 seasons: no seasonal model
        assert res.model in ("naive", "moving_average", "ewma", "holt")


def test_single_point_history() -> None:
    res = forecast_queue(series([4.0]), SPEC, queue="q")
    _sane(res)
    assert res.mean[0] == pytest.approx(4.0)
    lo, hi = res.bounds[0.8]
    assert hi[0] > 4.0 > lo[0]


def test_short_history_widens_intervals() -> None:
    hist = seasonal_rates(3, weekly=False)
    short = forecast_queue(hist.iloc[-12:], SPEC, queue="q")
    long = forecast_queue(hist, SPEC, queue="q")
    width = [
        float(np.mean(r.bounds[0.8][1] - r.bounds[0.8][0]) / np.mean(r.mean)) for r in (short, long)
    ]
    assert width[0] > width[1]


@pytest.mark.parametrize("value", [0.0, 7.5])
def test_constant_history(value: float) -> None:
    res = forecast_queue(series(np.full(4 * 96, value)), SPEC, queue="q")
    _sane(res)
    assert np.allclose(res.mean, value, atol=1e-6)
    assert not res.anomalies


def test_gaps_are_filled() -> None:
    hist = seasonal_rates(8, weekly=False)
    holed = hist.copy()
    holed.iloc[200:260] = np.nan
    holed = holed.drop(holed.index[400:420])  # missing rows, not just NaN
    res = forecast_queue(holed, SPEC, queue="q")
    _sane(res)
    assert any("missing" in n for n in res.notes)


def test_spike_is_flagged_and_kept_out_of_fitting() -> None:
    hist = seasonal_rates(8, weekly=False)
    spiked = hist.copy()
    spiked.iloc[300] = 500.0
    res = forecast_queue(spiked, SPEC, queue="q")
    clean = forecast_queue(hist, SPEC, queue="q")
    assert spiked.index[300] in res.anomalies
    assert not res.recent_anomaly
    assert np.allclose(res.mean, clean.mean, rtol=0.1)


def test_recent_burst_sets_recent_anomaly() -> None:
    hist = seasonal_rates(8, weekly=False)
    burst = hist.copy()
    burst.iloc[-3:] *= 6
    res = forecast_queue(burst, SPEC, queue="q")
    assert res.recent_anomaly and burst.index[-1] in res.anomalies
    # the numbers a person asked to approve instead of auto is told (issue 21)
    note = res.anomaly_note or ""
    worst = max(range(len(burst) - 3, len(burst)), key=lambda i: burst.iloc[i])
    assert f"{burst.iloc[worst]:.3g} jobs/s" in note or "jobs/s in the window" in note, note
    assert "expected" in note and "robust z +" in note and "limit 5" in note, note
    assert f"{burst.index[len(burst) - 1]:%Y-%m-%d}" in note


def test_a_recent_anomaly_names_its_numbers_in_the_auto_limits() -> None:
    from capplan_core.planning.planner import _auto_limits

    hist = seasonal_rates(8, weekly=False)
    burst = hist.copy()
    burst.iloc[-2:] *= 6
    res = forecast_queue(burst, SPEC, queue="q")
    assert res.anomaly_note is not None
    inp = SimpleNamespace(
        anomaly=True,
        anomaly_note=res.anomaly_note,
        data_quality_warning=False,
        current_workers=4,
        policy=SimpleNamespace(scaling=SimpleNamespace(auto_max_change=20), mode="auto"),
    )
    _, reasons = _auto_limits(inp, [(None, 4)], [])  # type: ignore[arg-type]
    assert reasons == [
        f"recent demand anomaly ({res.anomaly_note}): auto approval downgraded to manual"
    ]


def test_excluded_points_count_as_recent_anomalies() -> None:
    hist = seasonal_rates(4, weekly=False)
    exclude = pd.Series(False, index=hist.index)
    exclude.iloc[-1] = True
    res = forecast_queue(hist, SPEC, queue="q", exclude=exclude)
    assert res.recent_anomaly


def test_no_history_raises_no_history_error() -> None:
    empty = pd.Series([], index=pd.DatetimeIndex([], tz="UTC"), dtype=float)
    with pytest.raises(NoHistoryError):
        forecast_queue(empty, SPEC, queue="q")
    with pytest.raises(NoHistoryError):
        forecast_queue(series([np.nan] * 10), SPEC, queue="q")


def test_five_minute_input_is_resampled_to_the_planning_interval() -> None:
    hist = seasonal_rates(3, weekly=False, step_min=5)
    res = forecast_queue(hist, SPEC, queue="q")
    assert res.interval_s == 900 and len(res.mean) == 24
    assert (res.timestamps[1] - res.timestamps[0]).total_seconds() == 900
    assert res.timestamps[0] == hist.index[-1].floor("15min") + pd.Timedelta(minutes=15)


def test_thirty_minute_input_is_spread_over_finer_windows() -> None:
    hist = seasonal_rates(3, weekly=False, step_min=30)
    res = forecast_queue(hist, SPEC, queue="q")
    _sane(res)
    assert abs(float(np.mean(res.mean)) - float(hist.iloc[-12:].mean())) < 10


def test_calendar_event_scales_its_window() -> None:
    hist = seasonal_rates(4, weekly=False)
    base = forecast_queue(hist, SPEC, queue="q")
    start = base.timestamps[4].to_pydatetime()
    end = base.timestamps[8].to_pydatetime()
    ev = CalendarEvent(start=start, end=end, multiplier=3.0, name="sale")
    res = forecast_queue(hist, SPEC.model_copy(update={"events": [ev]}), queue="q")
    assert np.allclose(res.mean[4:8], 3 * base.mean[4:8])
    assert np.allclose(res.mean[:4], base.mean[:4]) and np.allclose(res.mean[8:], base.mean[8:])
    assert np.all(res.bounds[0.95][1][4:8] > base.bounds[0.95][1][4:8])


def test_past_event_does_not_shape_the_forecast() -> None:
    hist = seasonal_rates(4, weekly=False)
    boosted = hist.copy()
    boosted.iloc[-8:] *= 2
    ev = CalendarEvent(
        start=boosted.index[-8].to_pydatetime(),
        end=datetime(2030, 1, 1, tzinfo=UTC)
        if False
        else (boosted.index[-1] + pd.Timedelta(minutes=15)).to_pydatetime(),
        multiplier=2.0,
    )
    res = forecast_queue(boosted, SPEC.model_copy(update={"events": [ev]}), queue="q")
    clean = forecast_queue(hist, SPEC, queue="q")
    assert np.allclose(res.mean, clean.mean, rtol=0.05)


def test_same_input_and_seed_give_identical_forecast_and_paths() -> None:
    hist = seasonal_rates(9, weekly=False)
    a = forecast_queue(hist, SPEC, queue="q", seed=7)
    b = forecast_queue(hist, SPEC, queue="q", seed=7)
    assert np.array_equal(a.mean, b.mean) and a.selection == b.selection
    pa = a.simulate(50, np.random.default_rng(11))
    pb = b.simulate(50, np.random.default_rng(11))
    assert np.array_equal(pa, pb)


def test_paths_are_non_negative_and_match_the_intervals() -> None:
    res = forecast_queue(seasonal_rates(9, weekly=False), SPEC, queue="q")
    paths = res.simulate(4000, np.random.default_rng(0))
    assert paths.shape == (4000, 24) and np.all(paths >= 0)
    lo, hi = res.bounds[0.8]
    inside = np.mean((paths >= lo) & (paths <= hi), axis=0)
    assert np.all(np.abs(inside - 0.8) < 0.04)
    assert np.allclose(np.quantile(paths, 0.9, axis=0), res.quantile(0.9), rtol=0.05, atol=0.05)


def test_quantile_is_monotone_in_q() -> None:
    res = forecast_queue(seasonal_rates(4, weekly=False), SPEC, queue="q")
    qs = [res.quantile(q) for q in (0.1, 0.5, 0.9, 0.99)]
    assert all(np.all(a <= b + 1e-12) for a, b in zip(qs, qs[1:], strict=False))
    with pytest.raises(ValueError):
        res.quantile(1.0)


def test_explicit_models_all_run() -> None:
    hist = seasonal_rates(16, weekly=True)
    for name in (
        "naive",
        "seasonal_naive",
        "moving_average",
        "ewma",
        "holt",
        "holt_winters",
        "holt_winters_mul",
        "mstl",
    ):
        res = forecast_queue(hist, SPEC.model_copy(update={"model": name}), queue="q")
        _sane(res)
        assert res.model == name


def test_closed_nights_are_left_out_and_multiplicative_holt_winters_fits_open_time() -> None:
    # issue 22: a night closed every day is opening hours (forecast/opening.py): the model is
    # fitted on the open windows only, so even multiplicative Holt-Winters fits
    hist = seasonal_rates(4, weekly=False)
    night = (hist.index.hour >= 1) & (hist.index.hour < 4)
    hist[night] = 0.0
    res = forecast_queue(hist, SPEC.model_copy(update={"model": "holt_winters_mul"}), queue="q")
    _sane(res)
    assert res.model == "holt_winters_mul"
    assert any("opening hours learned from history" in n for n in res.notes)
    shut = (res.timestamps.hour >= 1) & (res.timestamps.hour < 4)
    assert np.all(res.mean[shut] == 0) and np.all(res.mean[~shut] > 0)


def test_multiplicative_holt_winters_falls_back_on_zeros() -> None:
    hist = seasonal_rates(4, weekly=False)
    night = (hist.index.hour >= 1) & (hist.index.hour < 4) & (hist.index.day != hist.index[0].day)
    hist[night] = 0.0  # most nights, not all: no opening hours, so the zeros stay in the fit
    res = forecast_queue(hist, SPEC.model_copy(update={"model": "holt_winters_mul"}), queue="q")
    _sane(res)
    assert res.model == "moving_average"
    assert "every candidate failed: moving-average fallback" in res.notes
    assert [e["model"] for e in res.selection] == ["holt_winters_mul"]
    assert "strictly positive" in res.selection[0]["error"]


def test_sporadic_zeros_are_kept_out_as_anomalies() -> None:
    hist = seasonal_rates(4, weekly=False)
    hist.iloc[::7] = 0.0
    res = forecast_queue(hist, SPEC.model_copy(update={"model": "holt_winters_mul"}), queue="q")
    _sane(res)
    assert res.model == "holt_winters_mul"
    assert any(n.endswith("anomalous window(s) kept out of fitting") for n in res.notes)
