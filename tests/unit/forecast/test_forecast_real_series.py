"""Accuracy and calibration on a real seasonal series shipped with statsmodels.

Choice: the Mauna Loa CO2 series (``statsmodels.datasets.co2``, weekly since 1958), averaged to
months: strong trend plus a yearly season, 526 points. statsmodels ships no sub-daily seasonal
series, so each month is mapped to a 2-hour planning window, making the year a "day" of 12
steps; the engine then treats it exactly like a queue with a daily cycle. Held out: 20 rolling
origins over the last 20 years, each forecasting 24 steps (two years) from the data before it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from capplan_core.forecast import forecast_queue
from capplan_core.forecast.evaluation import mase_scale
from capplan_core.policy import ForecastSpec

SEASON = 12
HORIZON = 24


@pytest.fixture(scope="module")
def held_out() -> dict[str, float]:
    co2 = sm.datasets.co2.load_pandas().data["co2"].resample("MS").mean().interpolate()
    y = co2.to_numpy()
    s = pd.Series(y, index=pd.date_range("2020-01-01", periods=len(y), freq="2h", tz="UTC"))
    spec = ForecastSpec(horizon_hours=HORIZON * 2, interval_minutes=120, seasonality=["daily"])
    auto, snaive, cover80, cover95 = [], [], [], []
    for k in range(20):
        end = len(y) - SEASON * (20 - k) - SEASON
        train, test = s.iloc[:end], y[end : end + HORIZON]
        res = forecast_queue(train, spec, queue="co2")
        scale = mase_scale(train.to_numpy(), SEASON)
        naive = np.tile(train.to_numpy()[-SEASON:], HORIZON // SEASON)
        auto.append(np.mean(np.abs(res.mean - test)) / scale)
        snaive.append(np.mean(np.abs(naive - test)) / scale)
        lo, hi = res.bounds[0.8]
        cover80.append(np.mean((test >= lo) & (test <= hi)))
        lo, hi = res.bounds[0.95]
        cover95.append(np.mean((test >= lo) & (test <= hi)))
    return {
        "auto": float(np.mean(auto)),
        "snaive": float(np.mean(snaive)),
        "cover80": float(np.mean(cover80)),
        "cover95": float(np.mean(cover95)),
    }


def test_auto_beats_seasonal_naive_on_mase(held_out: dict[str, float]) -> None:
    assert held_out["auto"] < 0.8 * held_out["snaive"], held_out


def test_80_percent_intervals_cover_70_to_90_percent(held_out: dict[str, float]) -> None:
    assert 0.70 <= held_out["cover80"] <= 0.90, held_out


def test_95_percent_intervals_cover_at_least_85_percent(held_out: dict[str, float]) -> None:
    assert 0.85 <= held_out["cover95"] <= 1.0, held_out
