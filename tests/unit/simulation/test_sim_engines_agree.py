"""The SimPy reference and the fast engine: same seed, same answer; and reproducibility."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from capplan_core.simulation import SimScenario, replicate_job_level, simulate


def _time_varying(**kw) -> SimScenario:
    rates = np.array([[4.0, 7.0, 11.0, 6.0, 3.0, 9.0], [5.0, 6.0, 12.0, 8.0, 2.0, 7.0]])
    base = dict(
        horizon_s=3600.0,
        window_s=600.0,
        rates_per_s=rates,
        initial_workers=5,
        steps=[(300.0, 9), (1500.0, 14), (2400.0, 6), (3000.0, 10)],
        mean_service_s=1.0,
        startup_s=45.0,
        mtbf_s=900.0,
        restart_s=20.0,
        initial_backlog=15,
        slo_wait_s=5.0,
        slo_max_backlog=60.0,
    )
    base.update(kw)
    return SimScenario(**base)


SCENARIOS = {
    "steps+startup+failures": _time_varying(),
    "quota+lognormal": _time_varying(
        quota_workers=11, service_kind="lognormal", service_scv=2.5, mtbf_s=None
    ),
    "empirical+no-startup": _time_varying(
        service_kind="empirical", startup_s=0.0, service_samples_s=np.array([0.2, 0.5, 1.0, 3.0])
    ),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_engines_give_identical_waits_on_time_varying_scenarios(name):
    sc = SCENARIOS[name]
    for rep in range(2):
        _, ref = replicate_job_level(sc, seed=11, replication=rep, engine="simpy")
        _, fast = replicate_job_level(sc, seed=11, replication=rep, engine="fast")
        np.testing.assert_allclose(fast.waits_s, ref.waits_s, rtol=0, atol=1e-9)
        np.testing.assert_array_equal(fast.window_max_backlog, ref.window_max_backlog)
        np.testing.assert_allclose(fast.window_busy_s, ref.window_busy_s, rtol=1e-9)
        np.testing.assert_allclose(fast.window_ready_s, ref.window_ready_s, rtol=1e-9)


def test_engines_give_the_same_summary():
    sc = SCENARIOS["steps+startup+failures"]
    a = simulate(sc, replications=3, seed=5, engine="simpy")
    b = simulate(sc, replications=3, seed=5, engine="fast")
    assert (a.engine, b.engine) == ("simpy", "fast")
    assert a.slo_achievement_rate == b.slo_achievement_rate
    np.testing.assert_array_equal(a.window_failure_rate, b.window_failure_rate)
    for field in ("mean_wait_s", "wait_probability", "p95_wait_s", "max_backlog"):
        assert getattr(a, field) == pytest.approx(getattr(b, field), abs=1e-9)
    assert a.utilization_range == pytest.approx(b.utilization_range, abs=1e-9)


def test_constant_pool_shortcut_matches_the_event_loop():
    rates = np.full(4, 8.5)
    static = SimScenario(
        horizon_s=2400.0, window_s=600.0, rates_per_s=rates, initial_workers=10, initial_backlog=30
    )
    # failures that never come force the general event loop on the same inputs
    events = SimScenario(
        horizon_s=2400.0,
        window_s=600.0,
        rates_per_s=rates,
        initial_workers=10,
        initial_backlog=30,
        mtbf_s=1e15,
    )
    assert static.constant_workers and not events.constant_workers
    _, a = replicate_job_level(static, seed=2, engine="fast")
    _, b = replicate_job_level(events, seed=2, engine="fast")
    np.testing.assert_allclose(a.waits_s, b.waits_s, atol=1e-9)
    np.testing.assert_array_equal(a.window_max_backlog, b.window_max_backlog)
    np.testing.assert_allclose(a.window_busy_s, b.window_busy_s, rtol=1e-9)
    np.testing.assert_allclose(a.window_ready_s, b.window_ready_s, rtol=1e-9)


@pytest.mark.parametrize("engine", ["fast", "fluid", "simpy"])
def test_same_seed_same_result(engine):
    sc = _time_varying(horizon_s=1200.0, rates_per_s=np.array([3.0, 5.0]))
    a = simulate(sc, replications=3, seed=42, engine=engine)
    b = simulate(sc, replications=3, seed=42, engine=engine)
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        assert np.array_equal(x, y, equal_nan=True) if isinstance(x, np.ndarray) else x == y


def test_other_seed_other_result_and_replications_differ():
    sc = _time_varying(horizon_s=1200.0, rates_per_s=np.array([3.0, 5.0]))
    a = simulate(sc, replications=2, seed=1, engine="fast")
    b = simulate(sc, replications=2, seed=2, engine="fast")
    assert a.mean_wait_s != b.mean_wait_s
    inp0, _ = replicate_job_level(sc, seed=1, replication=0)
    inp1, _ = replicate_job_level(sc, seed=1, replication=1)
    assert inp0.arrival_times_s.size != inp1.arrival_times_s.size or not np.array_equal(
        inp0.arrival_times_s, inp1.arrival_times_s
    )


def test_replication_uses_its_demand_path():
    rates = np.array([[0.0, 0.0], [20.0, 20.0]])
    sc = SimScenario(horizon_s=200.0, window_s=100.0, rates_per_s=rates, initial_workers=30)
    inp0, _ = replicate_job_level(sc, seed=3, replication=0)
    inp1, _ = replicate_job_level(sc, seed=3, replication=1)
    assert inp0.arrival_times_s.size == 0
    assert 3000 < inp1.arrival_times_s.size < 5000


def test_slo_judged_per_window_and_overall():
    # far too few workers in the middle windows only
    sc = SimScenario(
        horizon_s=4 * 600.0,
        window_s=600.0,
        rates_per_s=np.array([2, 2, 2, 2.0]),
        initial_workers=6,
        steps=[(600.0, 1), (1800.0, 6)],
        slo_wait_s=10.0,
    )
    s = simulate(sc, replications=20, seed=9, engine="fast")
    assert s.slo_achievement_rate == 0.0
    assert s.achievement_ci95[0] == 0.0 and 0.1 < s.achievement_ci95[1] < 0.2
    assert s.window_failure_rate[0] == 0.0 and s.window_failure_rate[1] == 1.0
    assert s.max_backlog > 100
