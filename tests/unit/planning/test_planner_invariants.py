"""Invariants of any plan: limits respected, actions a cooldown apart, no flapping."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from planner_helpers import NOW, plan, policy

demands = st.lists(st.floats(min_value=0.0, max_value=40.0), min_size=1, max_size=16)


@settings(max_examples=200, deadline=None)
@given(
    demand=demands,
    current=st.integers(0, 120),
    max_step=st.integers(1, 30),
    cooldown_s=st.sampled_from([0, 60, 300, 900, 1800]),
    startup_s=st.sampled_from([0, 60, 600]),
    k=st.integers(1, 4),
    min_drop=st.integers(1, 5),
    min_max=st.tuples(st.integers(0, 10), st.integers(10, 100)),
    last_ago_s=st.none() | st.integers(0, 3600),
)
def test_plans_respect_every_motion_limit(
    demand, current, max_step, cooldown_s, startup_s, k, min_drop, min_max, last_ago_s
):
    lo, hi = min_max
    pol = policy(
        max_step=max_step,
        cooldown_seconds=cooldown_s,
        startup_seconds=startup_s,
        scale_down_windows=k,
        scale_down_min_drop=min_drop,
        min_workers=lo,
        max_workers=hi,
    )
    last = None if last_ago_s is None else NOW - timedelta(seconds=last_ago_s)
    p = plan(pol, demand, current=current, last_scale_at=last)
    cd = timedelta(seconds=cooldown_s)
    prev_at = last
    prev_to = current
    prev_step = None
    for s in p.steps:
        assert s.execute_at >= NOW
        if prev_at is not None:
            assert s.execute_at - prev_at >= cd  # a cooldown apart, also after last
        assert s.from_workers == prev_to  # steps chain
        assert 0 < abs(s.to_workers - s.from_workers) <= max_step
        # inside [min, max], or moving into it from a current count outside it
        assert min(lo, s.from_workers) <= s.to_workers <= max(hi, s.from_workers)
        if s.to_workers < s.from_workers:
            prev_capped = prev_step is not None and "max_step" in [
                c["constraint"] for c in prev_step.explanation["constraints"]
            ]
            assert s.from_workers - s.to_workers >= min(min_drop, max_step) or prev_capped
            i = s.explanation["window_index"]
            # never below the need of the hysteresis windows that follow
            later = p.windows[i : i + k]
            assert len(later) == k
            assert s.to_workers >= max(w["needed_workers"] for w in later)
        prev_at, prev_to, prev_step = s.execute_at, s.to_workers, s
    # no up-down-up (or down-up-down) within one cooldown
    for a, b, c in zip(p.steps, p.steps[1:], p.steps[2:], strict=False):
        up1 = b.to_workers > b.from_workers
        up0 = a.to_workers > a.from_workers
        up2 = c.to_workers > c.from_workers
        if up0 != up1 and up1 != up2:
            assert c.execute_at - a.execute_at >= 2 * cd
    assert p.target_workers == max([w for _, w in p.schedule] + [s.to_workers for s in p.steps])


@settings(max_examples=100, deadline=None)
@given(demand=demands, current=st.integers(0, 100))
def test_with_free_motion_every_window_gets_what_it_needs(demand, current):
    # no cooldown, no startup, unlimited step, and hysteresis over one window: the schedule is
    # exactly the need (never below it)
    pol = policy(
        max_step=1000,
        cooldown_seconds=0,
        startup_seconds=0,
        scale_down_windows=1,
        min_workers=0,
        max_workers=1000,
    )
    p = plan(pol, demand, current=current)
    for (_, scheduled), w in zip(p.schedule, p.windows, strict=True):
        assert scheduled == w["needed_workers"] or (
            scheduled > w["needed_workers"] and w is p.windows[-1]
        )
