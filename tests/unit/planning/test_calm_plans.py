"""Calm plans (issue 15): dwell, hysteresis through short dips, step merging by action cost,
sizing without double counting, and no flapping in the bundled demo."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from capplan_core.backtest import run_backtest
from capplan_core.backtest.predictive import CycleForecaster, plan_from_forecast
from capplan_core.backtest.replay import Observation
from capplan_core.metrics.file_source import read_metrics_file
from capplan_core.planning import defaults
from capplan_core.planning.window_sizing import sizing_margin, sizing_quantile, window_needs
from capplan_core.policy import load_policies
from tests.unit.planning.planner_helpers import NOW, moves, plan, policy, starts

M = timedelta(minutes=1)
ROOT = Path(__file__).resolve().parents[3]


def test_no_scale_down_within_the_dwell_after_a_scale_up() -> None:
    # 4 -> 8 -> 4 workers: one busy window at 06:30
    p = plan(
        policy(min_dwell_seconds=1800, scale_down_windows=1, startup_seconds=120),
        [1.6, 1.6, 3.2, 1.6, 1.6, 1.6, 1.6, 1.6],
        current=4,
    )
    up_at = starts(8)[2] - 2 * M
    assert moves(p) == [(up_at, 4, 8), (up_at + 30 * M, 8, 4)]
    no_dwell = plan(
        policy(min_dwell_seconds=0, scale_down_windows=1, startup_seconds=120),
        [1.6, 1.6, 3.2, 1.6, 1.6, 1.6, 1.6, 1.6],
        current=4,
    )
    assert moves(no_dwell) == [(up_at, 4, 8), (starts(8)[3], 8, 4)]  # 17 min later


def test_a_short_dip_is_held_through() -> None:
    # the need drops to 4 for two windows (30 min), then comes back to 8: no down-and-up
    p = plan(
        policy(min_dwell_seconds=3600, scale_down_windows=1),
        [3.2, 1.6, 1.6, 3.2, 3.2, 3.2],
        current=8,
    )
    assert moves(p) == []
    assert "dwell" in p.windows[1]["note"]
    flappy = plan(
        policy(min_dwell_seconds=0, scale_down_windows=1), [3.2, 1.6, 1.6, 3.2, 3.2, 3.2], current=8
    )
    assert [(a, b) for _, a, b in moves(flappy)] == [(8, 4), (4, 8)]


def test_dwell_also_counts_from_the_last_action_before_the_plan() -> None:
    p = plan(
        policy(min_dwell_seconds=1800, scale_down_windows=1),
        [1.6] * 6,
        current=8,
        last_scale_at=NOW - 10 * M,
    )
    assert moves(p) == [(NOW + 20 * M, 8, 4)]


def test_action_cost_merges_a_later_scale_up_into_one() -> None:
    demand = [1.6, 2.4, 2.8, 3.2, 3.2, 3.2, 3.2, 3.2]  # needs 4, 6, 7, 8, 8, ...
    cheap = plan(policy(cooldown_seconds=0, startup_seconds=0), demand, current=4)
    assert [(a, b) for _, a, b in moves(cheap)] == [(4, 6), (6, 7), (7, 8)]
    # holding 1 extra worker 15 min early costs 0.25 worker-hours, 2 for 30 min 1.0
    merged = plan(
        policy(cooldown_seconds=0, startup_seconds=0, action_cost_worker_hours=1.0),
        demand,
        current=4,
    )
    assert moves(merged) == [(starts(8)[1], 4, 8)]
    half = plan(
        policy(cooldown_seconds=0, startup_seconds=0, action_cost_worker_hours=0.3),
        demand,
        current=4,
    )
    assert [(a, b) for _, a, b in moves(half)] == [(4, 7), (7, 8)]
    assert any(c["constraint"] == "merge" for c in merged.steps[0].explanation["constraints"])


def test_action_cost_skips_a_scale_down_that_saves_too_little() -> None:
    # 8 -> 4 for 30 min, then back to 8: the down saves 4 x 0.5 h = 2 worker-hours
    demand = [3.2, 1.6, 1.6, 3.2, 3.2, 3.2, 3.2, 3.2]
    kw = {
        "min_dwell_seconds": 0,
        "scale_down_windows": 1,
        "cooldown_seconds": 0,
        "startup_seconds": 0,
    }
    assert len(moves(plan(policy(action_cost_worker_hours=0.9, **kw), demand, current=8))) == 2
    held = plan(policy(action_cost_worker_hours=1.0, **kw), demand, current=8)
    assert moves(held) == []
    assert "action cost" in held.windows[1]["note"]


def test_target_attainment_sizes_to_that_quantile_without_the_margin() -> None:
    base = policy()
    assert (sizing_quantile(base), sizing_margin(base)) == (0.9, 0.25)
    t = base.model_copy(update={"slo": base.slo.model_copy(update={"target_attainment": 0.99})})
    assert (sizing_quantile(t), sizing_margin(t)) == (0.99, 0.0)
    assert sizing_margin(t, 0.9) == 0.25
    kw = {
        "now": NOW,
        "window_starts": starts(1),
        "demand_per_s": [4.0],
        "extra_workers": [0],
        "current_backlog": 0.0,
        "mean_service_s": 1.0,
        "service_scv": 1.0,
    }
    assert window_needs(base, **kw)[0].needed_workers == 10  # 4 x 1.25 / 0.5
    w = window_needs(t, demand_quantile=0.99, **kw)[0]
    assert (w.needed_workers, w.demand_quantile, w.safety_margin) == (8, 0.99, 0.0)
    # a caller that read the demand at another quantile keeps the margin (never under-sized)
    legacy = window_needs(t, **kw)[0]
    assert (legacy.needed_workers, legacy.demand_quantile, legacy.safety_margin) == (10, 0.9, 0.25)


def _demo(name: str):  # type: ignore[no-untyped-def]
    frame = read_metrics_file(ROOT / "data/demo/metrics.csv.gz")
    pol = {p.name: p for p in load_policies(ROOT / "data/demo/policies.yaml")}[name]
    return pol, frame.loc[frame["queue"] == pol.queue].reset_index(drop=True)


@pytest.fixture(scope="module")
def demo_reports():  # type: ignore[no-untyped-def]
    return _demo("reports")


def _opposite_within(steps: list[tuple[pd.Timestamp, int, int]], dwell_s: float) -> list:
    flaps = []
    for (t1, a1, b1), (t2, a2, b2) in zip(steps, steps[1:], strict=False):
        if (b1 - a1) * (b2 - a2) < 0 and (t2 - t1).total_seconds() < dwell_s:
            flaps.append(((t1, a1, b1), (t2, a2, b2)))
    return flaps


@pytest.mark.parametrize("queue", ["reports", "emails", "thumbnails"])
def test_no_flapping_in_the_demo_plans(queue: str) -> None:
    # issue 15: the reports plan went 3->4 and back 4->3 seventeen minutes later
    pol, rows = _demo(queue)
    dwell = defaults.dwell_seconds(pol)  # unset in the demo: derived, 2 windows >= 30 min
    assert dwell >= 1800
    ts = pd.to_datetime(rows["timestamp"], utc=True)
    fc = CycleForecaster(pol, rows)
    end = ts.max().ceil("15min")
    checked = 0
    for k in range(24):
        t = end - pd.Timedelta(hours=k)
        cf = fc.at(t)
        assert cf is not None
        cur = int(rows.loc[ts < t, "workers"].iloc[-1])
        rec = plan_from_forecast(
            pol, cf, Observation(t, 0.0, 0.0, 0.0, cur, cur, None), sizing_quantile(pol)
        )
        prev, steps = cur, []
        for at, w in rec.steps:
            steps.append((pd.Timestamp(at), prev, w))
            prev = w
        assert _opposite_within(steps, dwell) == [], t
        checked += len(steps)
    assert checked > 20


def test_no_flapping_when_the_demo_is_replayed(demo_reports) -> None:  # type: ignore[no-untyped-def]
    pol, rows = demo_reports
    r = run_backtest(rows, pol)
    for name in ("predictive", "hybrid"):
        acts = [(pd.Timestamp(t), a, b) for t, a, b in r.actions[name]]
        ups_then_downs = [
            (x, y)
            for x, y in zip(acts, acts[1:], strict=False)
            if x[2] > x[1]
            and y[2] < y[1]
            and (y[0] - x[0]).total_seconds() < defaults.dwell_seconds(pol)
        ]
        assert ups_then_downs == [], name
        # pooled attainment spends the 0.99 target as a budget: 191 of 192 windows (was 192
        # of 192 when every window was sized to the 99 % quantile, at 1.26x the oracle)
        assert r.strategies[name].slo_attainment >= pol.slo.target_attainment
        assert r.strategies[name].worker_hours < 1.20 * r.strategies["oracle"].worker_hours
        assert r.strategies[name].actions_per_day < r.strategies["reactive"].actions_per_day
