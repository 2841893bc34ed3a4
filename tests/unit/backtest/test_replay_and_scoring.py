"""The replay's pool and fluid backlog, and window scoring, on hand-checkable cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from capplan_core.backtest.demand import DemandTrace
from capplan_core.backtest.replay import Observation, replay, tick_length_s
from capplan_core.backtest.scoring import score_replay
from capplan_core.backtest.strategies import (
    ReactiveController,
    ReactiveSpec,
    ScheduleController,
    oracle_workers,
)
from capplan_core.queueing import SloTerms, required_workers
from tests.unit.backtest.synthetic import T0, policy


def trace(
    rates: list[float], mu: float = 1.0, backlog: float = 0.0, workers: int = 0
) -> DemandTrace:
    n = len(rates)
    return DemandTrace(
        "q",
        900.0,
        pd.date_range(T0, periods=n, freq="15min"),
        np.asarray(rates, float),
        np.full(n, mu),
        np.ones(n),
        initial_backlog=backlog,
        initial_workers=workers,
        prior_arrival_rate_per_s=rates[0],
    )


class Fixed:
    """Starts at ``first`` and commands ``then`` at ``at_s``."""

    def __init__(self, first: int, then: int, at_s: float, startup_s: float) -> None:
        self.name, self._startup_s = "fixed", startup_s
        self.first, self.then, self.at_s = first, then, at_s

    @property
    def startup_s(self) -> float:
        return self._startup_s

    def initial_workers(self) -> int:
        return self.first

    def command(self, obs: Observation) -> int | None:
        return self.then if (obs.t - T0).total_seconds() >= self.at_s else None


def test_scale_up_is_ready_only_after_the_startup_delay() -> None:
    rep = replay(trace([1.0]), Fixed(2, 6, 150.0, 60.0), tick_s=15.0)
    t = np.arange(len(rep.ready)) * rep.tick_s
    assert rep.commanded[t >= 150].min() == 6 and rep.commanded[t < 150].max() == 2
    assert rep.ready[t < 210].max() == 2 and rep.ready[t >= 210].min() == 6


def test_fluid_backlog_accumulates_beyond_capacity_and_drains_at_spare_capacity() -> None:
    # 10 jobs/s against 5 workers of 1 job/s for 60 s: +300 jobs; then 15 workers drain
    # at 5 jobs/s: 60 s more to empty
    rep = replay(trace([10.0]), Fixed(5, 15, 60.0, 0.0), tick_s=15.0)
    assert rep.backlog_end[3] == pytest.approx(300.0)
    assert rep.backlog_end[7] == pytest.approx(0.0)
    assert rep.backlog_end.max() == pytest.approx(300.0)


def test_tick_divides_the_window() -> None:
    assert tick_length_s(900.0) == 15.0
    assert 900.0 / tick_length_s(900.0, 14.0) == int(900.0 / tick_length_s(900.0, 14.0))


def test_oracle_is_the_erlang_c_count_and_meets_every_window() -> None:
    pol = policy()
    tr = trace([4.0, 20.0, 8.0])
    want = [required_workers(x, 1.0, SloTerms(wait_s=30.0)).workers for x in (4.0, 20.0, 8.0)]
    assert oracle_workers(tr, pol).tolist() == want
    rep = replay(tr, ScheduleController("oracle", np.asarray(want), 900.0, T0))
    score = score_replay(tr, rep, pol)
    assert score.slo_attainment == 1.0
    one_less = replay(tr, ScheduleController("less", np.asarray(want) - 1, 900.0, T0))
    # one worker fewer than the oracle misses the window: the oracle is the least count
    assert score_replay(tr, one_less, pol).slo_attainment == 0.0


def test_overload_counts_as_missing_and_p95_is_infinite() -> None:
    pol = policy()
    tr = trace([20.0])
    rep = replay(tr, ScheduleController("short", np.asarray([10]), 900.0, T0))
    s = score_replay(tr, rep, pol)
    assert s.slo_attainment == 0.0 and math.isinf(s.wait_p95_s)
    assert s.worst_backlog == pytest.approx(10.0 * 900.0)


def test_worker_hours_and_cost_integrate_commanded_replicas() -> None:
    pol = policy()
    tr = trace([2.0, 2.0, 2.0, 2.0])
    rep = replay(tr, ScheduleController("c", np.asarray([4, 4, 8, 8]), 900.0, T0))
    s = score_replay(tr, rep, pol)
    assert s.worker_hours == pytest.approx(4 * 0.5 + 8 * 0.5)
    assert s.cost == pytest.approx(s.worker_hours * pol.cost.worker_hour)
    assert s.scaling_actions == 1


def test_reactive_scale_down_waits_for_the_stabilisation_window() -> None:
    pol = policy()
    tr = trace([20.0, 2.0, 2.0])
    ctl = ReactiveController(pol, ReactiveSpec(), start_workers=27)
    rep = replay(tr, ctl)
    downs = [a for a in rep.actions if a[2] < a[1]]
    assert downs, "demand fell tenfold: the autoscaler must scale down"
    # the drop is seen one minute into window 1 (rate lag) and held for 300 s
    assert (downs[0][0] - tr.starts[1]).total_seconds() >= 60 + 300 - 30
    ups = [a for a in rep.actions if a[2] > a[1]]
    assert not ups
