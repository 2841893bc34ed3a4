"""The hybrid strategy, nowcasting in the replay, and the churn scores (issue 15)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capplan_core.backtest import run_backtest
from capplan_core.backtest.demand import DemandTrace
from capplan_core.backtest.hybrid import capacity_at_slo
from capplan_core.backtest.replay import Replay
from capplan_core.backtest.scoring import score_replay
from capplan_core.planning.window_sizing import slo_terms_from_policy
from capplan_core.queueing.sizing import required_workers
from tests.unit.backtest.synthetic import T0, daily_step, policy, rows

DAY = pd.Timedelta(days=1)
HOUR = pd.Timedelta(hours=1)


def surprise_step(low: float, high: float, at: pd.Timestamp):  # type: ignore[no-untyped-def]
    return lambda idx: np.where(idx >= at, high, low)


@pytest.fixture(scope="module")
def daily_step_result():  # type: ignore[no-untyped-def]
    # every day demand steps from 5 to 20 jobs/s at 12:00 and back at 18:00 (forecastable)
    frame = rows(4, daily_step(5.0, 20.0, 12, 18), workers=8)
    day3 = T0 + 3 * DAY
    return run_backtest(frame, policy(), start=day3 + 10 * HOUR, end=day3 + 20 * HOUR)


@pytest.fixture(scope="module")
def surprise_step_result():  # type: ignore[no-untyped-def]
    # flat 5 jobs/s for three days, then 20 jobs/s from day 3, 12:00 on: nothing foretold it
    at = T0 + 3 * DAY + 12 * HOUR
    frame = rows(3.75, surprise_step(5.0, 20.0, at), workers=8)
    return run_backtest(frame, draining(policy()), start=at - 2 * HOUR, end=at + 6 * HOUR)


def draining(p):  # type: ignore[no-untyped-def]
    """The policy with a 10-min drain term: the backlog of a missed step must be worked off."""
    return p.model_copy(update={"slo": p.slo.model_copy(update={"drain_seconds": 600.0})})


# measured (attainment, worker-hours) of hybrid / reactive / predictive on each step change
STEP_SCORES = {
    # foreseen daily 5 -> 20 jobs/s step: the floor is up before 12:00, reactive a poll late
    "daily_step_result": ((1.0, 151.75), (0.975, 194.56), (1.0, 150.25)),
    # unforeseen step: reactive's rule above the floor catches it as fast as reactive alone
    # issue 22: the derived action cost (5 min of the pool) holds a surprise's extra workers
    # a little longer: hybrid 169.64 -> 174.11, predictive 178.53 -> 183.00 (still <= reactive)
    "surprise_step_result": ((0.9688, 174.11), (0.9688, 178.56), (0.9062, 183.00)),
}


@pytest.mark.parametrize("fixture", sorted(STEP_SCORES))
def test_hybrid_is_never_worse_than_reactive_on_a_step_change(fixture, request) -> None:  # type: ignore[no-untyped-def]
    s = request.getfixturevalue(fixture).strategies
    assert s["hybrid"].slo_attainment >= s["reactive"].slo_attainment
    assert s["hybrid"].worker_hours <= s["reactive"].worker_hours
    for name, (att, wh) in zip(
        ("hybrid", "reactive", "predictive"), STEP_SCORES[fixture], strict=True
    ):
        assert s[name].slo_attainment == pytest.approx(att, abs=0.011), name  # 1 window
        assert s[name].worker_hours == pytest.approx(wh, rel=0.02), name


def test_hybrid_meets_the_forecastable_step_that_reactive_misses(daily_step_result) -> None:  # type: ignore[no-untyped-def]
    r = daily_step_result
    i = list(r.trace.starts).index(T0 + 3 * DAY + 12 * HOUR)
    assert r.strategies["hybrid"].windows[i].meets_slo
    assert not r.strategies["reactive"].windows[i].meets_slo
    assert r.strategies["hybrid"].slo_attainment == 1.0


def test_surprise_step_is_caught_within_one_replan(surprise_step_result) -> None:  # type: ignore[no-untyped-def]
    # nobody saw the step coming; the re-plan at 12:30 sees a half hour at 4x the forecast,
    # lifts the level at once (and drains the backlog): from 12:45 on every window is met
    r = surprise_step_result
    at = T0 + 3 * DAY + 12 * HOUR
    starts = list(r.trace.starts)
    after = [i for i, t in enumerate(starts) if t >= at + 45 * pd.Timedelta(minutes=1)]
    for name in ("predictive", "hybrid"):
        assert all(r.strategies[name].windows[i].meets_slo for i in after), name
    need = required_workers(20.0, 1.0, slo_terms_from_policy(policy(), 0.0)).workers
    assert min(r.ready_min["predictive"][i] for i in after) >= need
    replan = next(p for p in r.plan_log if p.at == at + 30 * pd.Timedelta(minutes=1))
    assert max(w for _, w in replan.steps) >= need


def test_without_nowcast_the_plan_stays_at_the_old_level(surprise_step_result) -> None:  # type: ignore[no-untyped-def]
    at = T0 + 3 * DAY + 12 * HOUR
    p = draining(policy())
    off = p.model_copy(
        update={"forecast": p.forecast.model_copy(update={"nowcast_half_life_hours": 0.0})}
    )
    r = run_backtest(
        rows(3.75, surprise_step(5.0, 20.0, at), workers=8),
        off,
        start=at - 2 * HOUR,
        end=at + 6 * HOUR,
    )
    assert (
        r.strategies["predictive"].slo_attainment
        < surprise_step_result.strategies["predictive"].slo_attainment - 0.3
    )


def test_capacity_at_slo_is_the_largest_rate_the_pool_serves() -> None:
    terms = slo_terms_from_policy(policy(), 0.0)
    lam = capacity_at_slo(25, 1.0, terms)
    assert required_workers(lam, 1.0, terms).workers <= 25
    assert required_workers(lam * 1.001, 1.0, terms).workers > 25
    assert capacity_at_slo(0, 1.0, terms) == 0.0


def test_changes_per_window_and_actions_per_day_count_the_replay() -> None:
    starts = pd.date_range(T0, periods=4, freq="15min")
    trace = DemandTrace("q", 900.0, starts, np.full(4, 1.0), np.full(4, 1.0), np.ones(4))
    n = 4 * 60
    rep = Replay(
        "x",
        15.0,
        60,
        np.full(n, 3),
        np.full(n, 3),
        np.zeros(n),
        np.zeros(n),
        actions=[(starts[1], 2, 3), (starts[1] + pd.Timedelta(minutes=5), 3, 4), (starts[3], 4, 3)],
    )
    s = score_replay(trace, rep, policy())
    assert s.scaling_actions == 3
    assert s.windows_changed == 2  # windows 1 and 3
    assert s.changes_per_window == pytest.approx(0.5)
    assert s.actions_per_day == pytest.approx(3 / (4 * 900 / 86_400))


def test_the_decide_loop_can_be_replayed_and_only_adds_workers() -> None:
    # sized to the median forecast with no margin, a noisy queue fails the Monte Carlo's 99 %
    # confidence: the decide loop adds workers where the simulated plan misses
    rng = np.random.default_rng(7)
    frame = rows(2.5, lambda idx: 2.0 * rng.lognormal(0.0, 0.3, len(idx)), workers=4)
    start = T0 + 2 * DAY + 6 * HOUR
    p = policy()
    p = p.model_copy(
        update={
            "scaling": p.scaling.model_copy(
                update={"confidence_threshold": 0.99, "max_replans": 2}
            ),
            "forecast": p.forecast.model_copy(update={"demand_quantile": 0.5}),
            "simulation": p.simulation.model_copy(update={"replications": 50}),
        }
    )
    plain = run_backtest(frame, p, start=start, end=start + 2 * HOUR)
    proved = run_backtest(frame, p, start=start, end=start + 2 * HOUR, prove_engine="fluid")
    assert len(proved.plan_log) == len(plain.plan_log) > 0
    tops = [
        (max([w for _, w in a.steps], default=0), max([w for _, w in b.steps], default=0))
        for a, b in zip(plain.plan_log, proved.plan_log, strict=True)
    ]
    assert all(b >= a for a, b in tops if b) and any(b > a for a, b in tops)
    assert (
        proved.strategies["predictive"].worker_hours > plain.strategies["predictive"].worker_hours
    )


def test_progress_is_reported_per_window_up_to_one() -> None:
    seen: list[tuple[str, float]] = []
    frame = rows(2.5, daily_step(5.0, 20.0, 12, 18), workers=8)
    start = T0 + 2 * DAY + 11 * HOUR
    r = run_backtest(
        frame,
        policy(),
        start=start,
        end=start + HOUR,
        progress=lambda name, share: seen.append((name, share)),
    )
    windows = len(r.trace) + 2  # scored + two warm-up windows
    assert len(seen) == len(r.strategies) * windows  # six, with the rate oracle
    assert [n for n, _ in seen[::windows]] == list(r.strategies)
    shares = [s for _, s in seen]
    assert shares == sorted(shares) and shares[-1] == pytest.approx(1.0)
