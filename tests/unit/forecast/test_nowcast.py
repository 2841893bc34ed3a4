"""Nowcasting: the next forecast corrects its level when the last half hour ran off it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capplan_core.forecast import forecast_queue
from capplan_core.forecast.models import SeasonalNaive
from capplan_core.forecast.nowcast import nowcast_factors
from capplan_core.policy import ForecastSpec

MONDAY = pd.Timestamp("2026-03-16T00:00:00Z")
STEP_AT = MONDAY + pd.Timedelta(hours=6)


def wave(idx: pd.DatetimeIndex) -> np.ndarray:
    hod = (idx.hour + idx.minute / 60) / 24
    return 20 * (1 + 0.5 * np.sin(2 * np.pi * (hod - 0.3)))


def monday_step(until: pd.Timestamp, factor: float = 1.3, seed: int = 3) -> pd.Series:
    """Two weeks of a daily wave; on Monday 06:00 demand steps up by ``factor`` for good."""
    idx = pd.date_range(MONDAY - pd.Timedelta(days=14), until, freq="15min", inclusive="left")
    lam = wave(idx) * np.where(idx >= STEP_AT, factor, 1.0)
    rng = np.random.default_rng(seed)
    return pd.Series(rng.poisson(lam * 900) / 900, index=idx)


def spec(half_life_h: float, model: str = "auto") -> ForecastSpec:
    return ForecastSpec(
        model=model,
        horizon_hours=3,
        seasonality=["daily", "weekly"],
        nowcast_half_life_hours=half_life_h,
    )


@pytest.mark.parametrize("model", ["seasonal_naive", "auto"])
def test_monday_step_is_corrected_by_the_first_replan_after_it(model) -> None:  # type: ignore[no-untyped-def]
    # the re-plan at 06:30 has seen half an hour at the new level
    at = STEP_AT + pd.Timedelta(minutes=30)
    hist = monday_step(at)
    truth = 1.3 * wave(pd.date_range(at, periods=4, freq="15min"))
    on = forecast_queue(hist, spec(3.0, model), queue="q")
    off = forecast_queue(hist, spec(0.0, model), queue="q")
    assert np.all(off.mean[:4] / truth < 0.85)  # the profile alone: ~23 % short
    assert np.all(np.abs(on.mean[:4] / truth - 1) < 0.06)  # corrected at once
    assert any(n.startswith("nowcast: the last hour ran at 1.") for n in on.notes)
    assert not any(n.startswith("nowcast") for n in off.notes)


def test_demand_running_as_forecast_changes_nothing() -> None:
    hist = monday_step(STEP_AT, factor=1.0)  # no step: the same wave every day
    on = forecast_queue(hist, spec(3.0, "seasonal_naive"), queue="q")
    off = forecast_queue(hist, spec(0.0, "seasonal_naive"), queue="q")
    assert np.array_equal(on.mean, off.mean)


def test_correction_is_full_for_an_hour_then_fades_with_the_half_life() -> None:
    y = np.full(96 * 3, 10.0)
    y[-2:] = 20.0  # the last half hour ran at twice the level
    m = SeasonalNaive(96, None).fit(y)
    nc = nowcast_factors(
        m,
        y,
        y,
        recent_steps=2,
        offset=0,
        n_out=24,
        step_s=900.0,
        half_life_s=3600.0,
        one_step_scale=0.5,
    )
    assert nc is not None and nc.ratio == pytest.approx(2.0)
    f = nc.factors
    assert f[:5] == pytest.approx([2.0] * 5)  # windows starting within the hour
    assert f[8] == pytest.approx(2.0**0.5)  # one half-life later: half the log-shift
    assert np.all(np.diff(f[4:]) < 0) and f[-1] > 1.0


def test_surprise_within_one_error_is_not_chased_and_half_life_zero_disables() -> None:
    y = np.full(96 * 3, 10.0)
    y[-2:] = 10.4
    m = SeasonalNaive(96, None).fit(y)
    kw = dict(recent_steps=2, offset=0, n_out=8, step_s=900.0)
    nc = nowcast_factors(m, y, y, half_life_s=3600.0, one_step_scale=0.5, **kw)
    assert nc is not None and nc.ratio == 1.0 and np.all(nc.factors == 1.0)
    assert nowcast_factors(m, y, y, half_life_s=0.0, one_step_scale=0.5, **kw) is None


def test_a_missing_newest_window_counts_on_neither_side() -> None:
    """A daily batch starts at 05:00; at 05:15 the newest window (05:00) is missing (the
    cleaning kept the jump out). Compared with the old forecast of both windows, the one
    window measured (04:45, quiet) read as "the last hour ran at 0.2x" and the batch was
    planned at a fifth of its size. Only the measured window is compared now."""
    idx = pd.date_range(MONDAY - pd.Timedelta(days=14), MONDAY + pd.Timedelta(hours=5, minutes=15),
                        freq="15min", inclusive="left")  # fmt: skip
    hod = idx.hour + idx.minute / 60
    y = np.where((hod >= 5) & (hod < 8), 3.3, 0.3)
    raw = y.copy()
    raw[-1] = np.nan  # the batch's first window, not measured
    model = SeasonalNaive(96).fit(y)
    nc = nowcast_factors(model, y, raw, recent_steps=2, offset=0, n_out=8, step_s=900,
                         half_life_s=3 * 3600, one_step_scale=0.05)  # fmt: skip
    # 04:45 ran as forecast (0.3), and it is a trough before the batch: nothing to correct
    assert nc is None or np.all(nc.factors == 1.0)
    # the batch measured at 05:00 as forecast: still nothing; measured at half: corrected
    for measured, ratio in ((3.3, 1.0), (1.65, 0.5)):
        raw[-1] = measured
        nc = nowcast_factors(model, y, raw, recent_steps=2, offset=0, n_out=8, step_s=900,
                             half_life_s=3 * 3600, one_step_scale=0.05)  # fmt: skip
        assert nc is not None
        assert nc.ratio == pytest.approx((0.3 + measured) / 3.6 if ratio != 1.0 else 1.0)
