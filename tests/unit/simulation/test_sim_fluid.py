"""The fluid level: its Erlang C, its agreement with the job-level engine, and ``auto``."""

from __future__ import annotations

import numpy as np
import pytest

from capplan_core.queueing import erlang_c
from capplan_core.simulation import (
    JOB_LEVEL_BUDGET,
    SimScenario,
    choose_engine,
    simulate,
)
from capplan_core.simulation.fluid import ready_schedule
from capplan_core.simulation.fluid_kernels import erlang_c_fast


@pytest.mark.parametrize("workers", [1, 2, 7, 50, 120, 1000, 5000])
@pytest.mark.parametrize("rho", [0.05, 0.5, 0.9, 0.99, 0.9999])
def test_fast_erlang_c_matches_the_full_recursion(workers, rho):
    a = rho * workers
    assert erlang_c_fast(workers, a) == pytest.approx(erlang_c(workers, a), rel=1e-9, abs=1e-12)


def test_fast_erlang_c_edges():
    assert erlang_c_fast(10, 0.0) == 0.0
    assert erlang_c_fast(10, 10.0) == 1.0
    assert erlang_c_fast(10, 12.0) == 1.0


def _surge() -> SimScenario:
    rates = np.array([30, 40, 55, 70, 60, 45, 35, 30.0])
    return SimScenario(
        horizon_s=8 * 900.0,
        window_s=900.0,
        rates_per_s=rates,
        initial_workers=40,
        steps=[(1500.0, 62), (2700.0, 70), (4500.0, 55), (5400.0, 42)],
        mean_service_s=1.0,
        startup_s=60.0,
        mtbf_s=3600.0,
        restart_s=60.0,
        initial_backlog=100,
        slo_wait_s=2.0,
        slo_max_backlog=400.0,
    )


def test_fluid_agrees_with_the_job_level_engine_on_a_surge_with_steps_and_failures():
    sc = _surge()
    job = simulate(sc, replications=6, seed=1, engine="fast")
    fluid = simulate(sc, replications=6, seed=1, engine="fluid")
    assert fluid.engine == "fluid"
    # the same windows fail (the overloaded ones) in every replication
    np.testing.assert_array_equal(fluid.window_failure_rate, job.window_failure_rate)
    assert fluid.slo_achievement_rate == job.slo_achievement_rate
    # the waits fall inside the job-level engine's 95% intervals
    for field in ("mean_wait_s", "wait_probability", "p95_wait_s"):
        lo, hi = getattr(job, f"{field}_ci95")
        assert lo <= getattr(fluid, field) <= hi, field
    np.testing.assert_allclose(fluid.window_utilization, job.window_utilization, atol=0.03)
    assert fluid.max_backlog == pytest.approx(job.max_backlog, rel=0.15)


def test_ready_schedule_follows_startup_and_cancels_pending_workers_first():
    sc = SimScenario(
        horizon_s=1000.0,
        window_s=100.0,
        rates_per_s=np.zeros(10),
        initial_workers=2,
        steps=[(100.0, 5), (120.0, 3), (400.0, 1)],
        startup_s=60.0,
        quota_workers=4,
    )
    times, counts = ready_schedule(sc)
    # to 4 (quota) at 100 → 2 pending; to 3 at 120 → one pending cancelled; ready at 160
    assert list(zip(times.tolist(), counts.tolist(), strict=True)) == [
        (0.0, 2),
        (120.0, 2),
        (160.0, 3),
        (400.0, 1),
    ]


def test_auto_runs_job_by_job_within_budget_and_fluid_beyond():
    low = SimScenario(
        horizon_s=3600.0, window_s=900.0, rates_per_s=np.full(4, 1.0), initial_workers=3
    )
    high = SimScenario(
        horizon_s=86400.0, window_s=900.0, rates_per_s=np.full(96, 1000.0), initial_workers=1100
    )
    assert choose_engine(low, 10) == "fast"
    assert choose_engine(high, 1000) == "fluid"
    assert 3600 * 10 <= JOB_LEVEL_BUDGET < 86400 * 1000 * 1000
    assert simulate(low, replications=2, seed=0).engine == "fast"
    s = simulate(high, replications=50, seed=0)
    assert s.engine == "fluid" and s.slo_achievement_rate == 1.0
    assert s.jobs == pytest.approx(50 * 86400 * 1000, rel=1e-9)


def test_fluid_refuses_injected_inputs():
    sc = SimScenario(
        horizon_s=10.0,
        window_s=10.0,
        rates_per_s=np.zeros(1),
        initial_workers=1,
        arrival_times_s=np.array([1.0]),
        service_times_s=np.array([1.0]),
    )
    with pytest.raises(ValueError, match="fluid"):
        simulate(sc, replications=1, seed=0, engine="fluid")
    assert simulate(sc, replications=1, seed=0).engine == "fast"
