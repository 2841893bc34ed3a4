"""Cost of a plan against constant and peak-static capacity; the hand-checkable table."""

from __future__ import annotations

from datetime import timedelta

import pytest
from planner_helpers import NOW, WINDOW_S, plan, policy, starts

from capplan_core.planning.cost import (
    net_cost,
    violation_cost,
    with_violation_cost,
    worker_hours,
)
from capplan_core.planning.explain import STEP_COLUMNS, WINDOW_COLUMNS, explanation_rows, step_rows
from capplan_core.planning.window_sizing import slo_terms_from_policy


def test_plan_cost_against_current_and_static_peak():
    # 4 windows of 15 min (1 h); 5 workers now, 20 from 06:28 (window 2 − 2 min startup)
    p = plan(
        policy(startup_seconds=120, cost={"worker_hour": 0.5, "violation_hour": 200}),
        [2, 2, 8, 8],
        current=5,
    )
    c = p.cost
    plan_wh = (5 * 28 + 20 * 32) / 60  # worker-minutes → worker-hours
    assert c["horizon_hours"] == 1.0
    assert c["plan_worker_hours"] == pytest.approx(plan_wh)
    assert c["plan_cost"] == pytest.approx(plan_wh * 0.5)
    assert (c["current_worker_hours"], c["current_cost"]) == (5.0, 2.5)
    assert (c["static_peak_workers"], c["static_peak_cost"]) == (20, 10.0)
    assert c["savings_vs_static_peak"] == pytest.approx(10.0 - plan_wh * 0.5)
    assert c["savings_vs_current"] == pytest.approx(2.5 - plan_wh * 0.5)
    assert c["expected_violation_cost"] is None and c["net_cost"] is None


def test_worker_hours_counts_steps_before_the_horizon_and_ignores_those_after():
    t = starts(2)
    steps = [(NOW - timedelta(minutes=5), 4), (t[1], 10), (t[1] + timedelta(hours=3), 99)]
    assert worker_hours(t, WINDOW_S, 1, steps) == pytest.approx(4 * 0.25 + 10 * 0.25)


def test_violation_cost_and_net():
    # two 15-min windows failing in 10 % and 50 % of replications at 200 per violation-hour
    assert violation_cost([0.1, 0.5], 900, 200) == pytest.approx((0.1 + 0.5) * 0.25 * 200)
    p = plan(policy(cost={"worker_hour": 1.0, "violation_hour": 200}), [8, 8], current=20)
    filled = with_violation_cost(p.cost, [0.1, 0.5], 900)
    assert filled["expected_violation_cost"] == pytest.approx(30.0)
    assert filled["net_cost"] == pytest.approx(p.cost["plan_cost"] + 30.0)
    assert net_cost(filled) == filled["net_cost"] and net_cost(p.cost) is None
    assert p.cost["expected_violation_cost"] is None  # the proposal's dict is untouched
    with pytest.raises(ValueError, match="window_failure_rate"):
        violation_cost([1.5], 900, 200)


def test_explanation_rows_can_be_checked_by_hand():
    p = plan(policy(max_workers=30, startup_seconds=60), [2, 4, 16], current=5)
    rows = explanation_rows(p)
    assert [list(r) for r in rows] == [WINDOW_COLUMNS] * 3
    for r in rows:
        assert r["arrival_rate_per_s"] == pytest.approx(r["demand_per_s"] * 1.25)
        assert (
            r["model_workers"] + r["margin_workers"] + r["extra_workers"] == (r["wanted_workers"])
        )
        assert r["margin"] == "25%"
    assert [r["model_workers"] for r in rows] == [4, 8, 32]
    assert [r["needed_workers"] for r in rows] == [5, 10, 30]
    assert rows[2]["constraints"] == "max -10"
    assert rows[1]["steps"] == "06:14:00 5→10" and rows[2]["steps"] == "06:29:00 10→30"
    srows = step_rows(p)
    assert [list(r) for r in srows] == [STEP_COLUMNS] * 2
    assert srows[1]["constraints"] == "max -10"
    assert "max -10" in p.steps[1].reason and "demand 16 jobs/s (q0.9)" in p.steps[1].reason


def test_slo_terms_from_policy_maps_every_term():
    pol = policy(
        slo={
            "wait_p95_seconds": 30,
            "mean_wait_seconds": 5,
            "max_backlog": 500,
            "drain_seconds": 600,
            "max_utilization": 0.9,
        }
    )
    t = slo_terms_from_policy(pol, current_backlog=1200)
    assert (
        t.wait_s,
        t.wait_quantile,
        t.mean_wait_s,
        t.max_backlog,
        t.drain_s,
        t.max_utilization,
        t.current_backlog,
    ) == (30, 0.95, 5, 500, 600, 0.9, 1200)
