"""Planner scenarios with hand-worked steps (need = ceil(2.5 · demand), see planner_helpers)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from planner_helpers import NOW, constraints, moves, plan, policy, starts

from capplan_core.planning.explain import explanation_rows

M = timedelta(minutes=1)


def test_morning_ramp_is_pre_scaled_by_the_startup_lead():
    p = plan(policy(startup_seconds=120), [2, 2, 2, 2, 8, 8, 8, 8], current=5)
    t = starts(8)
    assert moves(p) == [(t[4] - 2 * M, 5, 20)]
    e = p.steps[0].explanation
    assert (e["demand_per_s"], e["demand_quantile"]) == (8.0, 0.9)
    assert (e["model_workers"], e["margin_workers"], e["extra_workers"]) == (16, 4, 0)
    assert e["constraints"] == [] and e["late_by_s"] == 0.0
    assert [w for _, w in p.schedule] == [5, 5, 5, 5, 20, 20, 20, 20]
    assert p.target_workers == 20 and p.slo_achievable


def test_gradual_ramp_steps_up_one_lead_ahead_of_each_window():
    p = plan(policy(startup_seconds=60, cooldown_seconds=300), [2, 4, 6, 8], current=5)
    t = starts(4)
    assert moves(p) == [(t[1] - M, 5, 10), (t[2] - M, 10, 15), (t[3] - M, 15, 20)]


def test_scale_up_needed_now_is_never_scheduled_in_the_past():
    p = plan(policy(startup_seconds=120), [8, 8], current=5)
    assert moves(p) == [(NOW, 5, 20)]
    assert p.steps[0].explanation["late_by_s"] == 120.0  # ready 2 min into the window
    assert "after the window starts" in p.steps[0].reason


def test_short_dip_does_not_scale_down():
    p = plan(policy(scale_down_windows=3), [8, 8, 2, 2, 8, 8, 8, 8], current=20)
    assert p.steps == []
    rows = explanation_rows(p)
    assert [r["needed_workers"] for r in rows[2:4]] == [5, 5]
    assert [r["scheduled_workers"] for r in rows[2:4]] == [20, 20]
    assert rows[2]["constraints"] == "hysteresis +15"
    assert "scale_down_windows=3" in p.windows[2]["note"]


def test_sustained_drop_scales_down_at_the_window_and_back_up_ahead_of_the_rise():
    p = plan(
        policy(scale_down_windows=3, startup_seconds=120), [8, 8, 2, 2, 2, 2, 8, 8], current=20
    )
    t = starts(8)
    assert moves(p) == [(t[2], 20, 5), (t[6] - 2 * M, 5, 20)]
    assert p.steps[0].explanation["direction"] == "down"


def test_scale_down_keeps_the_highest_need_of_the_hysteresis_windows():
    # needs 20, 20, 5, 10, 10, 10: dropping at window 2 must keep 10 (next 2 windows' max)
    p = plan(policy(scale_down_windows=2), [8, 8, 2, 4, 4, 4], current=20)
    t = starts(6)
    assert moves(p) == [(t[2], 20, 10)]
    assert constraints(p.steps[0]) == {"hysteresis": 5}


def test_drop_smaller_than_min_drop_is_held():
    # 7.6 jobs/s needs 19 workers: a 1-worker drop, below scale_down_min_drop = 2
    p = plan(policy(scale_down_min_drop=2), [8, 8] + [7.6] * 6, current=20)
    assert p.steps == []
    assert "scale_down_min_drop=2" in p.windows[2]["note"]


def test_a_split_scale_down_finishes_even_when_the_last_part_is_below_min_drop():
    p = plan(
        policy(max_step=10, scale_down_min_drop=6, cooldown_seconds=300), [2, 2, 2, 2], current=20
    )
    assert moves(p) == [(NOW, 20, 10), (NOW + 5 * M, 10, 5)]


def test_large_jump_is_split_by_max_step_and_spaced_by_cooldown():
    p = plan(
        policy(max_step=10, cooldown_seconds=300, startup_seconds=120),
        [2, 2, 2, 2, 16, 16, 16, 16],
        current=5,
    )
    due = starts(8)[4] - 2 * M
    assert moves(p) == [
        (due - 15 * M, 5, 15),
        (due - 10 * M, 15, 25),
        (due - 5 * M, 25, 35),
        (due, 35, 40),
    ]
    assert [constraints(s).get("max_step") for s in p.steps] == [-25, -15, -5, None]
    assert [w for _, w in p.schedule][4] == 40  # all 40 commanded before the window starts


def test_cooldown_after_the_last_scale_delays_the_first_step():
    p = plan(
        policy(cooldown_seconds=300), [8, 8], current=5, last_scale_at=NOW - timedelta(seconds=60)
    )
    assert moves(p) == [(NOW + 4 * M, 5, 20)]
    delays = [
        c
        for c in p.steps[0].explanation["constraints"]
        if c["constraint"] == "cooldown" and c["unit"] == "s"
    ]
    assert delays and delays[0]["change"] == 240.0


def test_steps_inside_a_cooldown_are_merged_instead_of_flapping():
    # windows 5 min apart, cooldown 15 min: up, down, up, down, up would flap
    pol = policy(cooldown_seconds=900, startup_seconds=0, scale_down_windows=1)
    first = [NOW + timedelta(minutes=5 * i) for i in range(5)]
    p = plan(pol, [8, 2, 8, 2, 8], current=5, window_starts=first, window_s=300.0)
    assert moves(p) == [(NOW, 5, 20)]  # one step covers all five windows
    assert constraints(p.steps[0]) == {}  # window 0 itself needs 20
    assert "cooldown" in p.windows[1]["note"] and "cooldown" in p.windows[3]["note"]
    assert explanation_rows(p)[1]["constraints"] == "cooldown +15"


def test_budget_cap_binds_and_the_plan_says_the_slo_is_not_achievable():
    p = plan(policy(budget_per_hour=5.0), [8, 8, 8], current=5)
    assert moves(p) == [(NOW, 5, 10)]  # 5.00/h ÷ 0.50/worker-hour = 10 workers
    assert not p.slo_achievable
    assert "budget cap of 10 workers" in p.reasons[0] and "20 workers" in p.reasons[0]
    assert constraints(p.steps[0]) == {"budget": -10}
    assert explanation_rows(p)[0]["constraints"] == "budget -10"


def test_max_workers_binds_and_the_explanation_names_it():
    p = plan(policy(max_workers=12), [8, 8], current=5)
    assert moves(p) == [(NOW, 5, 12)]
    assert not p.slo_achievable and "max_workers 12" in p.reasons[0]
    assert constraints(p.steps[0]) == {"max": -8}
    assert explanation_rows(p)[0]["constraints"] == "max -8"


def test_min_workers_binds_and_the_explanation_names_it():
    p = plan(policy(min_workers=4), [0.2, 0.2, 0.2], current=10)
    assert moves(p) == [(NOW, 10, 4)]
    assert p.slo_achievable
    # 0.2 jobs/s · 1.25 → utilisation 0.5 needs 1 worker; min_workers raises it by 3
    assert constraints(p.steps[0]) == {"min": 3}
    assert explanation_rows(p)[0]["constraints"] == "min +3"


def test_extra_workers_from_the_decide_loop_are_added_before_constraints():
    p = plan(policy(max_workers=22), [8, 8], current=20, extra_workers=np.array([0, 5]))
    assert [w["wanted_workers"] for w in p.windows] == [20, 25]
    assert [w["needed_workers"] for w in p.windows] == [20, 22]
    assert moves(p) == [(starts(2)[1] - 2 * M, 20, 22)]
    assert not p.slo_achievable


def test_current_backlog_must_drain_in_the_first_window():
    pol = policy(slo={"max_utilization": 0.5, "drain_seconds": 600})
    # drain 6000 jobs within 600 s at the surplus (c − 10) jobs/s → c >= 20 + ... = 20
    p = plan(pol, [2, 2, 2], current=5, current_backlog=9000.0)
    assert p.windows[0]["needed_workers"] == 18  # (2.5 + 9000/600) / 1 = 17.5 → 18
    assert [w["needed_workers"] for w in p.windows[1:]] == [5, 5]
    assert p.steps[0].explanation["binding_term"] == "drain"


@pytest.mark.parametrize(
    ("kw", "mode", "allowed", "needle"),
    [
        ({}, "auto", True, None),
        ({}, "manual", False, None),
        ({"anomaly": True}, "auto", False, "anomaly"),
        ({"data_quality_warning": True}, "auto", False, "data-quality"),
    ],
)
def test_auto_allowed_is_downgraded_with_a_reason(kw, mode, allowed, needle):
    p = plan(policy(mode=mode), [8, 8], current=18, **kw)
    assert p.auto_allowed is allowed
    if needle:
        assert any(needle in r and "auto" in r for r in p.reasons)


def test_change_bigger_than_auto_max_change_needs_a_person():
    p = plan(policy(mode="auto", auto_max_change=10), [8, 8], current=5)
    assert not p.auto_allowed
    assert any("exceeds auto_max_change 10" in r for r in p.reasons)
    assert plan(policy(mode="auto", auto_max_change=15), [8, 8], current=5).auto_allowed


def test_plan_expires_after_the_policy_expiry():
    p = plan(policy(plan_expiry_seconds=1800), [8], current=20)
    assert p.expires_at == NOW + timedelta(seconds=1800) and p.as_of == NOW


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"demand_per_s": np.array([1.0, np.nan])}, "demand_per_s"),
        ({"demand_per_s": np.array([1.0])}, "demand_per_s has 1 values for 2 windows"),
        ({"extra_workers": np.array([-1, 0])}, "extra_workers"),
        ({"mean_service_s": 0.0}, "mean_service_s"),
        ({"current_workers": -2}, "current_workers"),
    ],
)
def test_bad_plan_input_names_the_field(kw, needle):
    with pytest.raises(ValueError, match=needle):
        plan(policy(), [1.0, 1.0], current=2, **kw)
