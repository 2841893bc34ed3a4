"""Shared pools in the simulation: exact event orders on tiny scenarios, the two job-level
engines agree job by job, one class is today's scenario, and the per-class waits agree with
the exact M/M/c priority formulas within the simulation's own interval."""

from __future__ import annotations

import numpy as np
import pytest

from capplan_core.queueing.priority import (
    all_busy_probability,
    class_wait_quantile_s,
    cobham_mean_waits_s,
)
from capplan_core.simulation import (
    JobClass,
    SimScenario,
    class_scenario,
    replicate_job_level,
    simulate,
    simulate_chunk,
    summarise_chunks,
)
from capplan_core.simulation.class_queues import ClassQueues
from capplan_core.simulation.engine import choose_engine
from capplan_core.simulation.fast_classes import run_fast_classes
from capplan_core.simulation.sampling import ReplicationInputs
from capplan_core.simulation.simpy_engine import run_simpy

WIDEN = 3.2905 / 1.959964  # 95% -> 99.9% intervals: several checks, none failing by chance


def _two(discipline: str = "strict", **kw) -> SimScenario:
    classes = [JobClass("high", np.array([1.0]), weight=3.0), JobClass("low", np.array([1.0]))]
    return class_scenario(
        classes, discipline=discipline, horizon_s=10.0, window_s=10.0, initial_workers=1, **kw
    )


def _inputs(classes: list[int], pick_u: list[float] | None = None) -> ReplicationInputs:
    n = len(classes)
    return ReplicationInputs(
        arrival_times_s=np.array([0.0, 0.1, 0.2, 0.3])[:n],
        service_times_s=np.ones(n),
        n_backlog=0,
        failure_draws_s=np.empty((1, 0)),
        job_class=np.array(classes, dtype=np.int64),
        pick_u=None if pick_u is None else np.array(pick_u),
    )


@pytest.mark.parametrize(
    ("discipline", "pick_u", "waits"),
    [
        # jobs: low at 0, high at 0.1, low at 0.2, high at 0.3; one worker, 1 s each
        ("strict", None, [0.0, 0.9, 2.8, 1.7]),  # high, high, then low
        ("round_robin", None, [0.0, 0.9, 1.8, 2.7]),  # turns: low, high, low, high
        # weights 3:1, one uniform per dispatch: u·4 < 3 picks high when both wait
        ("weighted", [0.5, 0.5, 0.5, 0.0], [0.0, 0.9, 2.8, 1.7]),
        ("weighted", [0.5, 0.8, 0.5, 0.0], [0.0, 1.9, 0.8, 2.7]),
        ("weighted", [0.5, 0.5, 0.9, 0.0], [0.0, 0.9, 1.8, 2.7]),
    ],
)
def test_tiny_scenario_serves_in_the_disciplines_order(discipline, pick_u, waits):
    sc = _two(discipline)
    inputs = _inputs([1, 0, 1, 0], pick_u)
    for run in (run_simpy, run_fast_classes):
        assert run(sc, inputs).waits_s == pytest.approx(waits, abs=1e-12), run.__name__


def test_a_failed_workers_job_goes_back_to_the_head_of_its_class():
    q = ClassQueues(np.array([0, 1, 1, 0]), 2, "strict", np.ones(2), None)
    for j in (1, 2, 3):
        q.append(j)
    q.appendleft(0)
    assert [q.popleft() for _ in range(4)] == [0, 3, 1, 2]
    rr = ClassQueues(np.array([0, 0, 1, 1]), 2, "round_robin", np.ones(2), None)
    for j in range(4):
        rr.append(j)
    assert [rr.popleft() for _ in range(4)] == [0, 2, 1, 3]


@pytest.mark.parametrize("discipline", ["strict", "round_robin", "weighted"])
def test_engines_agree_job_by_job_with_steps_failures_and_backlog(discipline):
    classes = [
        JobClass(
            "high",
            np.array([[0.6, 1.2, 0.4], [0.9, 0.3, 1.1]]),
            weight=2.0,
            slo_wait_s=1.0,
            initial_backlog=3,
        ),
        JobClass(
            "mid",
            np.array([0.8, 0.8, 0.8]),
            mean_service_s=1.5,
            service_kind="lognormal",
            service_scv=2.0,
            slo_wait_s=5.0,
        ),
        JobClass(
            "low",
            np.array([1.0, 0.2, 1.4]),
            service_kind="empirical",
            service_samples_s=np.array([0.2, 0.5, 3.0]),
            initial_backlog=2,
        ),
    ]
    sc = class_scenario(
        classes,
        discipline=discipline,
        horizon_s=1800.0,
        window_s=600.0,
        initial_workers=3,
        steps=[(300.0, 5), (900.0, 2), (1200.0, 4)],
        startup_s=20.0,
        mtbf_s=200.0,
        restart_s=15.0,
    )
    for seed in (1, 2):
        _, a = replicate_job_level(sc, seed=seed, engine="simpy")
        inputs, b = replicate_job_level(sc, seed=seed, engine="fast")
        assert inputs.arrival_times_s.size > 1000
        np.testing.assert_allclose(a.waits_s, b.waits_s, rtol=0, atol=1e-9)
        np.testing.assert_allclose(a.window_busy_s, b.window_busy_s, rtol=1e-12, atol=1e-9)
        np.testing.assert_array_equal(a.window_max_backlog, b.window_max_backlog)


def test_one_class_is_the_plain_scenario_bit_for_bit():
    rates = np.array([[2.0, 3.5, 1.0], [1.0, 4.0, 2.0]])
    plain = SimScenario(
        horizon_s=3600.0,
        window_s=1200.0,
        rates_per_s=rates,
        initial_workers=4,
        steps=[(1300.0, 6)],
        mean_service_s=1.2,
        service_scv=1.5,
        service_kind="lognormal",
        slo_wait_s=2.0,
        initial_backlog=4,
        mtbf_s=900.0,
        restart_s=10.0,
    )
    one = class_scenario(
        [
            JobClass(
                "only",
                rates,
                mean_service_s=1.2,
                service_scv=1.5,
                service_kind="lognormal",
                slo_wait_s=2.0,
                initial_backlog=4,
            )
        ],
        horizon_s=3600.0,
        window_s=1200.0,
        initial_workers=4,
        steps=[(1300.0, 6)],
        slo_wait_s=2.0,
        mtbf_s=900.0,
        restart_s=10.0,
    )
    a = simulate(plain, replications=4, seed=9, engine="fast")
    b = simulate(one, replications=4, seed=9, engine="fast")
    assert (a.mean_wait_s, a.p95_wait_s, a.slo_achievement_rate) == (
        b.mean_wait_s,
        b.p95_wait_s,
        b.slo_achievement_rate,
    )
    np.testing.assert_array_equal(a.window_failure_rate, b.window_failure_rate)
    assert b.classes[0].mean_wait_s == pytest.approx(a.mean_wait_s, rel=1e-12)
    assert a.classes == ()


def test_same_seed_same_result_and_chunks_merge_to_the_whole():
    sc = class_scenario(
        [
            JobClass("a", np.array([3.0] * 4), slo_wait_s=0.5),
            JobClass("b", np.array([4.0] * 4), slo_wait_s=2.0),
        ],
        discipline="weighted",
        horizon_s=2000.0,
        window_s=500.0,
        initial_workers=9,
    )
    whole = simulate(sc, replications=6, seed=4, engine="fast")
    again = simulate(sc, replications=6, seed=4, engine="fast")
    assert again.classes == whole.classes and again.mean_wait_s == whole.mean_wait_s
    parts = [
        simulate_chunk(sc, replications=6, seed=4, engine="fast", start=a, stop=b)
        for a, b in ((0, 2), (2, 6))
    ]
    merged = summarise_chunks(parts, sc, "fast")
    assert [c.mean_wait_s for c in merged.classes] == [c.mean_wait_s for c in whole.classes]
    assert merged.slo_achievement_rate == whole.slo_achievement_rate
    assert simulate(sc, replications=6, seed=5, engine="fast").classes != whole.classes


def test_a_class_missing_its_own_slo_fails_the_window():
    sc = class_scenario(
        [
            JobClass("high", np.array([4.0, 4.0]), slo_wait_s=0.0, slo_wait_quantile=0.5),
            JobClass("low", np.array([1.0, 1.0]), slo_wait_s=None),
        ],
        horizon_s=600.0,
        window_s=300.0,
        initial_workers=9,
    )
    s = simulate(sc, replications=3, seed=1, engine="fast")
    high, low = s.classes
    assert high.slo_achievement_rate == 1.0 and s.slo_achievement_rate == 1.0  # P(wait) small
    tight = class_scenario(
        [
            JobClass("high", np.array([4.6, 4.6]), slo_wait_s=0.0, slo_wait_quantile=0.9),
            JobClass("low", np.array([0.3, 0.3])),
        ],
        horizon_s=600.0,
        window_s=300.0,
        initial_workers=5,
    )
    t = simulate(tight, replications=3, seed=1, engine="fast")
    assert t.classes[0].slo_achievement_rate == 0.0 and t.slo_achievement_rate == 0.0
    assert t.classes[1].late_share is None and t.classes[1].slo_achievement_rate == 1.0
    assert low.late_share is None


def test_shared_pools_run_job_by_job():
    sc = _two()
    assert choose_engine(sc, replications=10**6, job_budget=1.0) == "fast"
    with pytest.raises(ValueError, match="fluid"):
        simulate(sc, replications=1, seed=0, engine="fluid")


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"name": " "}, "JobClass.name"),
        ({"rates_per_s": np.array([-1.0])}, "class 'q': rates_per_s"),
        ({"mean_service_s": 0.0}, "class 'q': mean_service_s"),
        ({"service_kind": "pareto"}, "class 'q': service_kind"),
        ({"service_kind": "empirical"}, "class 'q': service_kind='empirical'"),
        ({"slo_wait_quantile": 1.0}, "class 'q': slo_wait_quantile"),
        ({"weight": -2.0}, "class 'q': weight"),
        ({"initial_backlog": 1.5}, "class 'q': initial_backlog"),
    ],
)
def test_bad_class_names_the_field(kwargs, text):
    with pytest.raises(ValueError, match=text):
        JobClass(**({"name": "q", "rates_per_s": np.array([1.0])} | kwargs))


def test_bad_pool_scenarios_name_the_problem():
    a, b = JobClass("a", np.array([1.0, 2.0])), JobClass("b", np.array([1.0]))
    with pytest.raises(ValueError, match="needs 2 windows"):
        class_scenario([a, b], horizon_s=20.0, window_s=10.0, initial_workers=1)
    with pytest.raises(ValueError, match="unique"):
        class_scenario([a, a], horizon_s=20.0, window_s=10.0, initial_workers=1)
    with pytest.raises(ValueError, match="discipline"):
        class_scenario([a], discipline="lifo", horizon_s=20.0, window_s=10.0, initial_workers=1)
    with pytest.raises(ValueError, match="sum of the classes"):
        SimScenario(
            horizon_s=20.0,
            window_s=10.0,
            rates_per_s=np.array([5.0, 5.0]),
            initial_workers=1,
            classes=(a,),
        )


@pytest.mark.parametrize("seed", [11, 12, 13])
@pytest.mark.parametrize(("rates", "workers"), [((2.0, 3.0, 1.0), 8), ((4.0, 4.0), 10)])
def test_per_class_waits_match_the_exact_priority_formulas(rates, workers, seed):
    hours = 3.0
    sc = class_scenario(
        [JobClass(f"c{k}", np.array([r])) for k, r in enumerate(rates)],
        horizon_s=hours * 3600 * 1.1,
        window_s=hours * 3600 * 1.1,
        initial_workers=workers,
        warmup_s=hours * 360,
    )
    s = simulate(sc, replications=12, seed=seed, engine="fast")
    means = cobham_mean_waits_s(list(rates), 1.0, workers)
    c_wait = all_busy_probability(list(rates), 1.0, workers)
    for k, got in enumerate(s.classes):
        exact = {
            "mean_wait_s": means[k],
            "wait_probability": c_wait,
            "wait_quantile_s": class_wait_quantile_s(list(rates), 1.0, workers, k, 0.95),
        }
        for key, value in exact.items():
            lo, hi = getattr(got, f"{key}_ci95")
            half = (hi - lo) / 2 * WIDEN
            assert abs(getattr(got, key) - value) <= half, (k, key, getattr(got, key), value)
            assert hi - lo < 0.3 * value, (k, key, "interval too wide to mean much")
