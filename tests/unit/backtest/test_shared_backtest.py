"""Backtest of a pool shared by several queues, each scored against its own SLO (issue 23).

The scoring agrees with the sizing maths (a constant pool at the exact least count meets
every queue, one fewer misses one), the per-queue fluid backlog follows the discipline, and
the demo's shared pool is replayed end to end from its own data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from capplan_core.backtest.demand import DemandTrace
from capplan_core.backtest.replay import replay
from capplan_core.backtest.run import BacktestError
from capplan_core.backtest.shared import pool_trace, run_shared_backtest, shared_oracle_workers
from capplan_core.backtest.shared_scoring import class_backlogs, score_pool
from capplan_core.backtest.strategies import ScheduleController
from capplan_core.metrics.file_source import read_metrics_file_cached
from capplan_core.planning.window_sizing import slo_terms
from capplan_core.policy import ScalingPolicy, load_policies
from capplan_core.queueing.pool_sizing import PoolClass, required_workers_priority

ROOT = Path(__file__).resolve().parents[3]
STARTS = pd.date_range("2026-11-20T00:00Z", periods=8, freq="15min")


def _policy(discipline: str = "strict") -> ScalingPolicy:
    return ScalingPolicy.model_validate(
        {
            "name": "pool",
            "queue": "high",
            "target": {"kind": "deployment", "namespace": "w", "name": "pool-worker"},
            "slo": {"wait_p95_seconds": 1.0},
            "scaling": {"min_workers": 1, "max_workers": 200},
            "forecast": {"interval_minutes": 15},
            "shared": {
                "discipline": discipline,
                "queues": [
                    {"queue": "high"},
                    {"queue": "low", "slo": {"wait_p95_seconds": 20.0, "wait_quantile": 0.99}},
                ],
            },
        }
    )


def _trace(queue: str, rate: float, service_s: float, n: int = 8) -> DemandTrace:
    return DemandTrace(
        queue=queue,
        window_s=900.0,
        starts=STARTS[:n],
        arrival_rate_per_s=np.full(n, rate),
        service_rate_per_s=np.full(n, 1.0 / service_s),
        service_scv=np.ones(n),
    )


def test_the_pool_trace_counts_the_pools_work_exactly() -> None:
    high, low = _trace("high", 6.0, 1.0), _trace("low", 2.0, 3.0)
    pool = pool_trace([high, low], "high")
    assert np.allclose(pool.arrival_rate_per_s, 8.0)
    # 8 jobs/s at a work-weighted 1/1.5 jobs/s per busy worker: 12 busy workers, 6 + 6
    assert np.allclose(pool.arrival_rate_per_s / pool.service_rate_per_s, 12.0)


@pytest.mark.parametrize("discipline", ["strict", "round_robin"])
def test_a_constant_pool_at_the_least_count_meets_every_queue_and_one_fewer_misses_one(
    discipline: str,
) -> None:
    policy = _policy(discipline)
    traces = [_trace("high", 6.0, 1.0), _trace("low", 2.0, 3.0)]
    classes = [
        PoolClass(t.queue, 6.0 if t.queue == "high" else 2.0, slo_terms(policy.slo_of(t.queue), 0))
        for t in traces
    ]
    classes[1] = PoolClass("low", 2.0, classes[1].terms, mean_service_s=3.0)
    least = required_workers_priority(classes, 1.0, discipline=discipline).workers
    oracle = shared_oracle_workers(traces, policy)
    assert set(oracle) == {least}
    pool = pool_trace(traces, "high")
    for count, all_met in ((least, True), (least - 1, False)):
        rep = replay(pool, ScheduleController("fixed", np.full(8, count), 900.0, STARTS[0]))
        score = score_pool(traces, rep, policy)
        met = {q: s.slo_attainment for q, s in score.queues.items()}
        if all_met:
            assert met == {"high": 1.0, "low": 1.0} and score.slo_attainment == 1.0
        else:
            assert min(met.values()) == 0.0 and score.slo_attainment == 0.0, met
        assert score.worker_hours == pytest.approx(count * 2.0)  # 8 windows of 15 min


def test_the_fluid_backlog_serves_the_first_queue_first_under_strict_order() -> None:
    # 10 busy workers' worth of work arrives on 8 workers: 2 workers' worth piles up
    traces = [_trace("high", 6.0, 1.0, n=1), _trace("low", 4.0, 1.0, n=1)]
    ready = np.full(60, 8)
    strict = class_backlogs(traces, ready, 15.0, 60, "strict")
    assert np.all(strict[0] == 0.0)  # high never waits for capacity
    assert strict[1, -1] == pytest.approx(2.0 * 15.0 * 59)  # low gets what is left: 2 jobs/s short
    shared = class_backlogs(traces, ready, 15.0, 60, "round_robin")
    assert shared[0, -1] > 0 and shared[1, -1] > 0  # a fluid share: both queues wait
    assert shared[:, -1].sum() == pytest.approx(strict[:, -1].sum())  # the same work in total


def test_a_queue_without_demand_is_not_judged_and_a_missing_queue_is_named() -> None:
    policy = _policy()
    traces = [_trace("high", 6.0, 1.0), _trace("low", 0.0, 3.0)]
    rep = replay(
        pool_trace(traces, "high"), ScheduleController("f", np.full(8, 9), 900.0, STARTS[0])
    )
    score = score_pool(traces, rep, policy)
    assert score.queues["low"].windows_with_demand == 0
    assert score.queues["low"].slo_attainment == 1.0 and score.windows_with_demand == 8
    rows = pd.DataFrame(
        {
            "timestamp": STARTS,
            "queue": "high",
            "arrival_rate": 1.0,
            "service_rate": 1.0,
            "backlog": 0.0,
            "workers": 2,
        }  # fmt: skip
    )
    with pytest.raises(BacktestError, match="queue 'low' of the shared pool: no metric rows"):
        run_shared_backtest(rows, policy)


@pytest.mark.slow
def test_the_demo_shared_pool_is_replayed_and_each_queue_scored_on_its_own_slo() -> None:
    """`notifications` (push first, then digest's morning batch), the last two days: what
    docs/backtest.md reports. The oracle meets both queues in every window by construction;
    predictive plans every cycle from each queue's forecast, keeps push whole and costs
    less than the reactive KEDA that sums both lists."""
    pol = {p.name: p for p in load_policies(ROOT / "data/demo/policies.yaml")}["notifications"]
    frame = read_metrics_file_cached(ROOT / "data/demo/metrics.csv.gz")
    rows = frame.loc[frame["queue"].isin(pol.served_queues)].reset_index(drop=True)
    r = run_shared_backtest(rows, pol)
    d = r.to_dict()
    s = d["strategies"]
    assert set(s) == {"predictive", "reactive", "static_peak", "oracle"}
    assert d["shared"] == {"queues": ["notify-push", "notify-digest"], "discipline": "strict"}
    assert all(v["slo_attainment"] == 1.0 for v in s["oracle"]["queues"].values())
    assert r.plans >= 90  # a plan every 30 minutes over two days
    pred = s["predictive"]
    assert pred["queues"]["notify-push"]["slo_attainment"] == 1.0
    # measured 1.0 (0.974 before the anomaly check scaled its spread at the batch's level)
    assert pred["queues"]["notify-digest"]["slo_attainment"] >= 0.99
    assert 1.0 < pred["worker_hours_vs_oracle"] <= 1.10  # measured 1.065
    assert pred["worker_hours"] < 0.85 * s["reactive"]["worker_hours"]  # measured 0.80
    assert len(d["windows"]) == 192 and set(d["windows"][0]["arrival_rate"]) == {
        "notify-push",
        "notify-digest",
    }
