"""The calibration check of P(met) (issue 22): does a window planned at P(met) = p meet its SLO
about p of the time? Reliability bins, their binomial check, and a replay on Poisson demand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capplan_core.backtest import run_backtest
from capplan_core.backtest.calibration import ReliabilityBin, regimes, reliability
from tests.unit.backtest.synthetic import T0, policy, rows

DAY = pd.Timedelta(days=1)


def test_bins_count_only_windows_with_demand_and_a_plan() -> None:
    p = np.array([0.97, 0.97, 0.97, 0.999, np.nan, 0.999])
    met = np.array([1.0, 1.0, 0.0, 1.0, 1.0, 0.0])
    busy = np.array([True, True, True, True, True, False])
    bins = {(b.lo, b.hi): b for b in reliability(p, met, busy)}
    assert bins[(0.95, 0.98)].windows == 3
    assert bins[(0.95, 0.98)].observed == pytest.approx(2 / 3)
    assert bins[(0.995, 1.0)].windows == 1 and bins[(0.995, 1.0)].observed == 1.0


def test_a_bin_is_overconfident_only_beyond_its_binomial_spread() -> None:
    # 200 windows at P(met) 0.99: 2 misses are expected, 6 are within 2 standard errors
    # (sd = sqrt(0.99 * 0.01 / 200) = 0.007), 8 are not
    assert not ReliabilityBin(0.98, 0.99, 200, 0.99, 1 - 2 / 200).overconfident
    assert not ReliabilityBin(0.98, 0.99, 200, 0.99, 1 - 4 / 200).overconfident
    assert ReliabilityBin(0.98, 0.99, 200, 0.99, 1 - 8 / 200).overconfident


def test_switch_days_are_mondays_saturdays_and_the_first_day_after_a_closed_one() -> None:
    starts = pd.date_range("2026-01-06T00:00Z", periods=5 * 24, freq="h")  # Tue..Sat
    busy = np.ones(len(starts), dtype=bool)
    busy[24:48] = False  # Wednesday closed (a holiday)
    reg = regimes(starts, busy)
    day = {d: set(reg[starts.normalize() == d]) for d in starts.normalize().unique()}
    names = [f"{d:%a}" for d in day]
    assert dict(zip(names, [r.pop() for r in day.values()], strict=True)) == {
        "Tue": "steady",
        "Wed": "steady",
        "Thu": "switch",
        "Fri": "steady",
        "Sat": "switch",
    }


def _poisson_daily(seed: int = 3):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)

    def rate(idx: pd.DatetimeIndex) -> np.ndarray:
        hours = idx.hour + idx.minute / 60.0
        true = 6.0 + 3.0 * np.sin(2 * np.pi * (hours - 8.0) / 24.0)
        return rng.poisson(true * 300.0) / 300.0  # 5-minute counts

    return rate


def test_p_met_of_a_replay_on_poisson_demand_is_not_overconfident() -> None:
    frame = rows(4.0, _poisson_daily(), workers=10)
    start = T0 + 3 * DAY
    r = run_backtest(frame, policy(safety_margin=None), start=start, end=start + DAY)
    cal = r.calibration
    assert cal["mean_p_met"] is not None and cal["brier"] is not None
    assert not any(b["overconfident"] for b in cal["bins"]), cal["bins"]
    n = r.strategies["predictive"].windows_with_demand
    se = np.sqrt(cal["mean_p_met"] * (1 - cal["mean_p_met"]) / n)
    assert cal["observed"] >= cal["mean_p_met"] - 2 * se - 1e-9
    assert np.isfinite(r.met_probability).sum() >= 0.9 * len(r.met_probability)
