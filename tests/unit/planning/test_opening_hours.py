"""Opening hours (issue 22): a call centre open on weekdays 07:00-21:05, closed otherwise.

Data: bench/shapes.py's synthetic bank call centre (5-minute Poisson counts, 180-s calls, 80 %
answered within 20 s), two weeks of history; plans are made on the third week's Wednesday
from the rows before each moment only, with the policy a user writes (SLO, bounds, max_step,
startup 300 s).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.shapes import CALL_START, _call_profile, call_centre_policy, call_centre_rows
from capplan_core.backtest.predictive import CycleForecaster, PlanRecord, plan_from_forecast
from capplan_core.backtest.replay import Observation
from capplan_core.forecast import ForecastResult
from capplan_core.planning.window_sizing import sizing_quantile

WEDNESDAY = CALL_START + pd.Timedelta(days=16)
OPENING = WEDNESDAY + pd.Timedelta(hours=7)


@pytest.fixture(scope="module")
def forecaster() -> CycleForecaster:
    return CycleForecaster(call_centre_policy(), call_centre_rows(3))


def _late_morning_ratio(fc: ForecastResult, day_factor: float = 1.0) -> np.ndarray:
    """The forecast of each 09:00-13:00 window against the true profile (window midpoints)."""
    hours = fc.timestamps.hour + fc.timestamps.minute / 60.0 + 7.5 / 60.0
    busy = (hours >= 9.0) & (hours < 13.0)
    true = _call_profile(hours.to_numpy()) * day_factor
    return np.asarray(fc.mean[busy] / true[busy])


def _plan(fc: CycleForecaster, at: pd.Timestamp, workers: int) -> PlanRecord:
    pol = fc.policy
    cf = fc.at(at)
    assert cf is not None
    obs = Observation(at, 0.0, 0.0, 0.0, workers, workers, None)
    return plan_from_forecast(pol, cf, obs, sizing_quantile(pol))


def test_workers_are_ready_at_the_opening_taking_startup_into_account(forecaster) -> None:  # type: ignore[no-untyped-def]
    startup = pd.Timedelta(seconds=call_centre_policy().scaling.startup_seconds)
    rec = _plan(forecaster, WEDNESDAY + pd.Timedelta(hours=5), workers=0)
    first_at, first_to = rec.steps[0]
    # nothing during the night; the first agents are started so they are ready at 07:00
    assert pd.Timestamp(first_at) == OPENING - startup
    assert first_to >= 10
    # before 09:15 the pool reaches the ramp's need (the plan held 1 agent until then)
    by_915 = max(w for t, w in rec.steps if pd.Timestamp(t) <= OPENING + pd.Timedelta(hours=2))
    assert by_915 >= 100


def test_workers_are_released_after_the_closing(forecaster) -> None:  # type: ignore[no-untyped-def]
    rec = _plan(forecaster, WEDNESDAY + pd.Timedelta(hours=20, minutes=30), workers=60)
    closing = WEDNESDAY + pd.Timedelta(hours=21, minutes=15)  # the 21:00-21:15 window ends
    downs = [(pd.Timestamp(t), w) for t, w in rec.steps]
    assert downs[-1][1] == 0  # min_workers: 0
    assert closing <= downs[-1][0] <= closing + pd.Timedelta(minutes=30)
    assert all(w > 0 for t, w in downs if t < closing)  # open windows keep agents


def test_the_morning_ramp_comes_from_the_season_not_the_night(forecaster) -> None:  # type: ignore[no-untyped-def]
    cf = forecaster.at(OPENING)  # the half hour before was closed: zeros
    assert cf is not None
    fc = cf.forecast
    assert not any(n.startswith("nowcast") for n in fc.notes)
    assert any("opening hours learned from history" in n for n in fc.notes)
    ratio = _late_morning_ratio(fc)
    assert ratio.min() > 0.8 and ratio.max() < 1.25  # the season's level, not 0.2x


def test_closed_windows_are_forecast_at_zero_with_no_spread(forecaster) -> None:  # type: ignore[no-untyped-def]
    cf = forecaster.at(WEDNESDAY + pd.Timedelta(hours=18))
    assert cf is not None
    fc = cf.forecast
    closed = fc.timestamps >= WEDNESDAY + pd.Timedelta(hours=21, minutes=15)
    assert closed.any()
    assert (fc.mean[closed] == 0).all() and (fc.quantile(0.99)[closed] == 0).all()
    assert (fc.mean[~closed] > 0).all()


def test_the_first_hours_after_closing_take_no_extra_risk(forecaster) -> None:  # type: ignore[no-untyped-def]
    # issue 22: spend less of the budget where calibration is uncertain — the morning after
    # a closed night has no same-day evidence, so those windows are planned at the target
    cf = forecaster.at(WEDNESDAY + pd.Timedelta(hours=5))
    assert cf is not None
    fc = cf.forecast
    assert fc.uncertain is not None
    ramp = (fc.timestamps >= OPENING) & (fc.timestamps < OPENING + pd.Timedelta(hours=2))
    assert fc.uncertain[ramp].all()
    assert not fc.uncertain[fc.mean <= 0].any()
    assert not fc.uncertain[fc.timestamps >= OPENING + pd.Timedelta(hours=2, minutes=15)].any()


def test_a_week_with_closed_days_brings_the_weekly_season_on_open_time(forecaster) -> None:  # type: ignore[no-untyped-def]
    # the policy asks for a daily season only; closed weekends are a weekly pattern by
    # themselves, so with two weeks of history the open-time week (5 x 57 windows) is used
    cf = forecaster.at(WEDNESDAY + pd.Timedelta(hours=9))
    assert cf is not None
    assert call_centre_policy().forecast.seasonality == ["daily"]
    assert any(
        "forecast on open time (57 windows a day, 285 a week)" in n for n in cf.forecast.notes
    )


def test_a_model_chosen_at_night_serves_the_first_weekday_morning() -> None:
    """The backtest re-chooses the model once a day; the call centre's choice falls at
    23:30 on Sunday, when a six-hour horizon holds no open window. Candidates are judged at
    the policy's whole horizon (24 windows), so the choice still forecasts Monday's ramp: a
    trend model judged one window ahead had dragged Monday morning to 0.5-0.6 of its level."""
    fc = CycleForecaster(call_centre_policy(), call_centre_rows(3))
    sunday_night = CALL_START + pd.Timedelta(days=13, hours=23, minutes=30)
    night = fc.at(sunday_night)
    assert night is not None
    horizons = {e["backtest"]["horizon_steps"] for e in night.forecast.selection if "backtest" in e}
    assert horizons == {24}  # 6 h of 15-min windows, not the one open window ahead
    monday = fc.at(sunday_night + pd.Timedelta(hours=7, minutes=30))  # 07:00, same choice
    assert monday is not None and monday.forecast.model == night.forecast.model
    f = monday.forecast
    ratio = _late_morning_ratio(f, day_factor=1.15)  # Mondays are 15 % busier
    assert ratio.min() > 0.75 and ratio.max() < 1.25  # judged one window ahead: 0.58-0.67


def test_the_replay_chooses_again_when_the_first_whole_week_shows_the_weekend_closed() -> None:
    """With less than a week of history the calendar knows only the nights; a model chosen
    then (Sunday 23:30 of the first week, the weekend's zeros in its series: Holt wins) is
    not kept once the weekly calendar appears half an hour later."""
    fc = CycleForecaster(call_centre_policy(), call_centre_rows(2))
    sunday_night = CALL_START + pd.Timedelta(days=6, hours=23, minutes=30)
    night = fc.at(sunday_night)
    assert night is not None and "of the day closed" in night.forecast.notes[0]
    monday = sunday_night + pd.Timedelta(hours=7, minutes=30)
    cf = fc.at(monday)
    assert cf is not None and "of the week closed" in cf.forecast.notes[0]
    assert fc._chosen_at == monday  # chosen again, not a day after the night's choice
    f = cf.forecast
    ratio = _late_morning_ratio(f, day_factor=1.15)
    assert ratio.min() > 0.7 and ratio.max() < 1.3
