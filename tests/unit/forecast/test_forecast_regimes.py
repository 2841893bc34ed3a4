"""Intervals per regime on a real half-hourly series: Taylor's England & Wales demand.

Data: ``pmdarima.datasets.load_taylor`` (J. W. Taylor 2003, *JORS* 54, 799-805; summer 2000,
half-hourly), read as jobs/s (bench/real_series.py). Held out: 112 rolling origins, every 6 h
over the last four weeks, each forecasting the planner's 6 hours from all data before it.
Measured (the same origins as docs/benchmarks-forecast.md): MAE 0.494x the weekly
seasonal naive; 80 % interval coverage at peaks (actual demand in the top quartile) 0.73
pooled, 0.77 with ``interval_calibration: regime``; over Mondays and Saturdays 0.74 / 0.78.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.real_series import taylor_rows
from capplan_core.forecast import forecast_queue
from capplan_core.forecast.regimes import regime_factors
from capplan_core.policy import ForecastSpec

pytestmark = pytest.mark.slow  # 112 forecasts from 8-12 weeks of half-hourly history (~35 s)

H, WEEK = 12, 336


def _spec(calibration: str) -> ForecastSpec:
    return ForecastSpec(
        model="auto",
        horizon_hours=6,
        interval_minutes=30,
        seasonality=["daily", "weekly"],
        interval_calibration=calibration,
    )


@pytest.fixture(scope="module")
def held_out() -> dict[str, dict[str, float]]:
    rows = taylor_rows()
    y = pd.Series(rows["arrival_rate"].to_numpy(), index=pd.DatetimeIndex(rows["timestamp"]))
    v = y.to_numpy()
    first = len(y) - 4 * WEEK
    top = np.quantile(v[first:], 0.75)
    out: dict[str, dict[str, float]] = {}
    for cal in ("regime",):  # pooled: the same point forecast, 0.73 / 0.73 / 0.74 covered
        err, naive, hits, peak, switch = [], [], [], [], []
        for o in range(first, len(y) - H + 1, 12):
            test = v[o : o + H]
            r = forecast_queue(y.iloc[:o], _spec(cal), queue="taylor")
            err.append(np.abs(r.mean - test))
            naive.append(np.abs(v[o - WEEK : o - WEEK + H] - test))
            lo, hi = r.bounds[0.8]
            hits.append((test >= lo) & (test <= hi))
            peak.append(test >= top)
            days = y.index[o : o + H].dayofweek
            switch.append((days == 0) | (days == 5))
        a, pk, sw = np.concatenate(hits), np.concatenate(peak), np.concatenate(switch)
        out[cal] = {
            "mae_vs_naive": float(np.mean(err) / np.mean(naive)),
            "all": a.mean(),
            "peak": a[pk].mean(),
            "switch": a[sw].mean(),
        }
    return out


def test_mae_is_at_most_half_the_weekly_seasonal_naive(held_out) -> None:  # type: ignore[no-untyped-def]
    assert 0.45 <= held_out["regime"]["mae_vs_naive"] <= 0.50, held_out


def test_regime_intervals_cover_near_nominal_at_peaks_and_switch_days(held_out) -> None:  # type: ignore[no-untyped-def]
    reg = held_out["regime"]
    for bucket in ("all", "peak", "switch"):  # measured 0.793 / 0.774 / 0.781
        assert 0.75 <= reg[bucket] <= 0.85, (bucket, held_out)


def test_a_thin_regime_borrows_from_its_day_kind_then_the_pool(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import capplan_core.forecast.regimes as regimes
    from capplan_core.forecast.selection import choose

    rows = taylor_rows()
    n = 80 * 48  # up to Wednesday 23 August 2000
    y, idx = rows["arrival_rate"].to_numpy()[:n], pd.DatetimeIndex(rows["timestamp"])[:n]

    def factors(weekly: bool = True):  # type: ignore[no-untyped-def]
        choice = choose(
            "mstl",
            y,
            horizon=H,
            day_steps=48,
            week_steps=WEEK,
            levels=(0.8,),
            floor=1e-6,
            stamp=str,
        )
        return regime_factors(
            choice.model, y, idx, choice.calibration, horizon=H, day_steps=48, weekly=weekly
        )

    full = factors()
    assert full is not None
    # 57 origins (14 days, 4 a day) x 12 steps; Mondays + Saturdays hold 192, their peaks 38
    assert sum(full.cells.values()) == 684 and full.cells[("switch", "peak")] == 38
    f = {k: round(v, 3) for k, v in full.factors.items()}
    assert f == {
        ("steady", "offpeak"): 1.325,
        ("steady", "peak"): 1.932,
        ("switch", "offpeak"): 1.295,
        ("switch", "peak"): 1.546,
    }, f
    monkeypatch.setattr(regimes, "MIN_CELLS", 1_000)  # every regime too thin: all pooled
    thin = factors()
    assert thin is not None and len(set(thin.factors.values())) == 1
    assert (
        min(full.factors.values()) <= thin.factors[("switch", "peak")] <= max(full.factors.values())
    )
    daily = factors(weekly=False)  # without a weekly season there is one day kind
    assert daily is not None and {k for k, _ in daily.factors} == {"all"}


def test_a_biased_calibration_keeps_the_pooled_intervals() -> None:
    from capplan_core.forecast.selection import choose

    rows = taylor_rows()  # to Sunday 27 August: the last day's errors are all negative
    y, idx = rows["arrival_rate"].to_numpy(), pd.DatetimeIndex(rows["timestamp"])
    choice = choose(
        "mstl", y, horizon=H, day_steps=48, week_steps=WEEK, levels=(0.8,), floor=1e-6, stamp=str
    )
    assert np.quantile(choice.calibration.z_sorted, 0.9) < 0  # its 80 % interval excludes 0
    assert (
        regime_factors(
            choice.model, y, idx, choice.calibration, horizon=H, day_steps=48, weekly=True
        )
        is None
    )
