"""The issue-15 goal on a real intraday series: Taylor's half-hourly England & Wales demand.

Data: ``pmdarima.datasets.load_taylor`` (J. W. Taylor 2003, *JORS* 54, 799-805), read as a
pool of 450-930 busy workers with 20-s jobs and a 60-s p95 wait SLO (bench/real_series.py).
Held out: Monday 21 and Tuesday 22 August 2000 (96 windows of 30 min), 11 weeks of history.
Measured: calm predictive 100 % of windows at 1.076x the oracle, changes in 27 % of windows
(13 actions/day); shipped 100 % at 1.117x, 95 %, 51/day; reactive 100 % at 1.319x.
Since issue 22 (derived action cost, dwell of two windows): calm predictive 100 % at 1.070x,
23 % changed; calm hybrid 100 % at 1.076x, 30.2 % (29 of 96 windows); shipped (the legacy
margin rule, now with the derived action cost) 100 % at 1.148x, 25 % changed.
The ``calm`` configuration of bench/bench_backtest.py; the full week is in docs/backtest.md.
"""

from __future__ import annotations

import pandas as pd
import pytest

from bench.bench_backtest import calm, taylor_policy
from bench.real_series import TAYLOR_START, taylor_rows
from capplan_core.backtest import run_backtest

pytestmark = pytest.mark.slow  # two 2-day replays with a forecast every 30 min (~30-70 s)


@pytest.fixture(scope="module")
def taylor_monday():  # type: ignore[no-untyped-def]
    rows = taylor_rows()
    start = TAYLOR_START + pd.Timedelta(days=77)
    assert start.day_name() == "Monday"
    end = start + pd.Timedelta(days=2)
    return (
        run_backtest(rows, taylor_policy(), start=start, end=end),
        run_backtest(rows, calm(taylor_policy(), rows, start), start=start, end=end),
    )


def test_calm_plans_meet_the_goal_on_a_real_monday(taylor_monday) -> None:  # type: ignore[no-untyped-def]
    _, tuned = taylor_monday
    s = tuned.strategies
    oracle_wh = s["oracle"].worker_hours
    for name in ("predictive", "hybrid"):
        assert s[name].slo_attainment >= 0.99, name
        assert s[name].worker_hours <= 1.10 * oracle_wh, name
        # issue 22's calm clause: <= 30 % of windows, or no more often than the oracle (the
        # hybrid's reactive part changes 29 of 96 windows, one over 30 %; the oracle 97 %)
        calm_limit = 0.30 if name == "predictive" else max(0.30, s["oracle"].changes_per_window)
        assert s[name].changes_per_window <= calm_limit, name
        assert s[name].slo_attainment >= s["reactive"].slo_attainment, name
        assert s[name].worker_hours < 0.85 * s["reactive"].worker_hours, name


@pytest.fixture(scope="module")
def taylor_monday_pooled():  # type: ignore[no-untyped-def]
    rows = taylor_rows()
    start = TAYLOR_START + pd.Timedelta(days=77)
    return run_backtest(
        rows,
        calm(taylor_policy(), rows, start, "pooled"),
        start=start,
        end=start + pd.Timedelta(days=2),
    )


def test_pooled_attainment_keeps_the_goal_on_a_real_monday(
    taylor_monday,  # type: ignore[no-untyped-def]
    taylor_monday_pooled,
) -> None:
    # the risk budget may not cost the real series its goal, nor cost more than per-window
    _, per_window = taylor_monday
    s = taylor_monday_pooled.strategies
    p = s["predictive"]
    assert p.slo_attainment >= 0.99
    assert p.worker_hours <= 1.10 * s["oracle"].worker_hours
    assert p.changes_per_window <= 0.30
    assert p.worker_hours < 0.85 * s["reactive"].worker_hours
    assert p.worker_hours <= per_window.strategies["predictive"].worker_hours


def test_shipped_margins_cost_more_than_the_target(taylor_monday) -> None:  # type: ignore[no-untyped-def]
    # the legacy rule (q0.9 + 10 % margin) double counts the forecast error: it costs over
    # 1.10x; with issue 22's derived action cost it no longer churns (was 95 % of windows)
    shipped, tuned = taylor_monday
    a, b = shipped.strategies["predictive"], tuned.strategies["predictive"]
    assert a.slo_attainment == 1.0
    assert a.worker_hours > 1.10 * shipped.strategies["oracle"].worker_hours
    assert a.worker_hours > 1.05 * b.worker_hours
    assert a.changes_per_window <= 0.30 and b.changes_per_window <= 0.30


def test_pooled_plans_on_elec_equip_meet_the_goal() -> None:
    # statsmodels' elec_equip (Eurostat), one year compressed into a day, 2014-15, with the
    # demo's emails policy: the bench measured (2026-12-02) pooled 100 % of windows at
    # 1.071x the oracle, 7 % changed, 7.0 actions a day; reactive 100 % at 1.310x, 3.5 a day.
    # (Sized per window to the 99 % quantile with emails' old scale_down_min_drop 3 it was
    # 100 % at 1.110x, 3 % changed: min_drop 2 takes more, smaller scale-downs.)
    from bench.bench_backtest import elec_policy
    from bench.real_series import elec_equip_rows

    rows, _ = elec_equip_rows()
    pol = elec_policy()
    assert pol.slo.attainment_mode == "pooled"
    s = run_backtest(rows, calm(pol, rows, None, "pooled")).strategies
    oracle_wh = s["oracle"].worker_hours
    assert s["predictive"].slo_attainment >= 0.99
    assert s["predictive"].slo_attainment >= s["reactive"].slo_attainment
    assert s["predictive"].worker_hours <= 1.10 * oracle_wh
    assert s["predictive"].changes_per_window <= 0.10
    assert s["predictive"].worker_hours < 0.85 * s["reactive"].worker_hours
    assert s["predictive"].actions_per_day <= 8.0
