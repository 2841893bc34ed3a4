"""Planning a shared pool (issue 23, capplan_core/planning/shared_plan.py): every window is
sized so that every queue meets its own SLO, and one worker fewer misses one; the step says
which queue drives it and every queue's predicted wait; the plan is proven by the class
simulation on each queue's own demand; a pool sized on one queue alone would starve the
other."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from capplan_core.forecast import ForecastResult
from capplan_core.planning.shared_plan import SharedQueue, plan_shared_pool
from capplan_core.planning.window_sizing import slo_terms
from capplan_core.policy import ScalingPolicy
from capplan_core.queueing.pool_sizing import PoolClass, evaluate_pool
from capplan_core.queueing.sizing import required_workers

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
N = 8  # 15-minute windows
HIGH = [3.0] * 4 + [6.0] * 4  # jobs/s: the high queue doubles at 10:00
LOW = [2.0] * N


def _policy(discipline: str = "strict", **scaling) -> ScalingPolicy:
    return ScalingPolicy.model_validate(
        {
            "name": "mixed",
            "queue": "high",
            "mode": "manual",
            "target": {"name": "mixed-worker"},
            "slo": {"wait_p95_seconds": 2},
            "shared": {
                "discipline": discipline,
                "queues": [
                    {"queue": "high"},
                    {"queue": "low", "slo": {"wait_p95_seconds": 60}},
                ],
            },
            "scaling": {
                "min_workers": 1,
                "max_workers": 60,
                "startup_seconds": 120,
                "cooldown_seconds": 0,
                **scaling,
            },
            "forecast": {"interval_minutes": 15},
            "simulation": {"replications": 30, "seed": 11},
        }
    )


def _forecast(queue: str, rates: list[float], spread: float = 0.0) -> ForecastResult:
    mean = np.asarray(rates, dtype=float)
    return ForecastResult(
        queue=queue,
        model="test",
        interval_s=900.0,
        timestamps=pd.date_range(T0, periods=N, freq="15min"),
        mean=mean,
        bounds={0.8: (mean, mean)},
        selection=[],
        recent_anomaly=False,
        anomalies=[],
        notes=[],
        scale=np.full(N, spread) * mean,
    )


def _queues(spread: float = 0.0) -> list[SharedQueue]:
    return [
        SharedQueue("high", _forecast("high", HIGH, spread), mean_service_s=1.0),
        SharedQueue("low", _forecast("low", LOW, spread), mean_service_s=1.0),
    ]


def _classes(policy: ScalingPolicy, high: float, low: float) -> list[PoolClass]:
    return [
        PoolClass("high", high, slo_terms(policy.slo_of("high"), 0.0)),
        PoolClass("low", low, slo_terms(policy.slo_of("low"), 0.0)),
    ]


def _meets(policy: ScalingPolicy, c: int, high: float, low: float) -> bool:
    r = evaluate_pool(_classes(policy, high, low), 1.0, c, discipline="strict")
    return all(x.meets_slo for x in r.classes)


def test_every_window_is_the_least_pool_where_every_queue_meets_its_slo() -> None:
    policy = _policy()
    plan = plan_shared_pool(policy, _queues(), now=T0 - timedelta(minutes=5), current_workers=4)
    for w in plan.windows:
        hi, lo = w.demand_per_s["high"], w.demand_per_s["low"]
        assert _meets(policy, w.sized_workers, hi, lo)
        assert not _meets(policy, w.sized_workers - 1, hi, lo)  # one fewer misses a queue
        assert w.exact, w.model  # strict M/M/c, one service rate: exact (Davis 1966)
    quiet, busy = plan.windows[0], plan.windows[-1]
    assert busy.sized_workers > quiet.sized_workers
    # sized on the high queue alone, the pool would be smaller and starve the low queue
    alone = required_workers(6.0, 1.0, slo_terms(policy.slo_of("high"), 0.0)).workers
    assert alone < busy.sized_workers and not _meets(policy, alone, 6.0, 2.0)


def test_each_step_says_which_queue_drives_it_and_every_queues_predicted_wait() -> None:
    policy = _policy()
    plan = plan_shared_pool(policy, _queues(), now=T0 - timedelta(minutes=5), current_workers=4)
    up = [s for s in plan.steps if s.to_workers > s.from_workers]
    assert up, plan.steps
    last = up[-1]
    # ready for the 10:00 doubling: executed a startup (120 s) before it, never after
    assert last.to_workers == plan.windows[-1].needed_workers
    assert last.execute_at <= T0 + timedelta(hours=1) - timedelta(seconds=120)
    e = last.explanation
    assert e["driving_queue"] in ("high", "low") and set(e["predicted_wait_s"]) == {"high", "low"}
    assert f"queue {e['driving_queue']} drives it" in last.reason
    assert "predicted waits at the SLO quantiles: high" in last.reason
    for q, slo_s in (("high", 2.0), ("low", 60.0)):
        assert e["predicted_wait_s"][q] <= slo_s + 1e-9


def test_the_plan_is_proven_by_the_class_simulation_on_each_queues_demand() -> None:
    policy = _policy()
    plan = plan_shared_pool(
        policy, _queues(spread=0.05), now=T0 - timedelta(minutes=5), current_workers=4
    )
    names = [c.name for c in plan.simulation.classes]
    assert names == ["high", "low"]
    assert plan.confidence >= policy.scaling.confidence_threshold and plan.slo_achievable
    for c in plan.simulation.classes:
        assert c.late_share is not None and c.late_share <= 0.05 + 0.02, c


def test_a_pool_capped_below_what_the_queues_need_says_so() -> None:
    policy = _policy(max_workers=8)
    plan = plan_shared_pool(policy, _queues(), now=T0 - timedelta(minutes=5), current_workers=4)
    assert not plan.slo_achievable
    assert any("SLO not achievable: max_workers 8" in r for r in plan.reasons)


def test_the_queues_must_be_the_pools_own() -> None:
    policy = _policy()
    with pytest.raises(ValueError, match="must be exactly the pool's"):
        plan_shared_pool(policy, _queues()[:1], now=T0, current_workers=4)
    single = ScalingPolicy.model_validate(
        {"name": "x", "queue": "high", "target": {"name": "w"}, "slo": {"wait_p95_seconds": 2}}
    )
    with pytest.raises(ValueError, match="is not a shared pool"):
        plan_shared_pool(single, _queues(), now=T0, current_workers=4)
