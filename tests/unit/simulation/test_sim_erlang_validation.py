"""Stationary M/M/c: every engine agrees with Erlang C within the Monte Carlo interval.

Tolerances come from the simulation's own 95% intervals (t over replications), widened to the
99.9% level (× 3.29/1.96) so that the several checks here do not fail by chance; seeds fixed.
"""

from __future__ import annotations

import numpy as np
import pytest

from capplan_core.queueing import mean_wait_s, wait_probability, wait_quantile_s
from capplan_core.simulation.stationary import run_stationary

WIDEN = 3.2905 / 1.959964


def _check(out: dict, rate: float, workers: int, max_width: float = 0.25) -> None:
    exact = {
        "mean_wait_s": mean_wait_s(rate, 1.0, workers),
        "wait_probability": wait_probability(rate, 1.0, workers),
        "wait_p95_s": wait_quantile_s(rate, 1.0, workers, 0.95),
    }
    for key, value in exact.items():
        lo, hi = out[f"{key}_ci95"]
        half = max((hi - lo) / 2 * WIDEN, 1e-9)
        assert abs(out[key] - value) <= half, (key, out[key], value, lo, hi)
        assert hi - lo < max_width * max(value, 0.05), (key, "interval too wide to mean much")


@pytest.mark.parametrize(
    ("workers", "rho", "hours"),
    [
        (1, 0.5, 3.0),
        (2, 0.8, 6.0),
        (5, 0.95, 24.0),
        (20, 0.85, 2.0),
        (50, 0.95, 3.0),
    ],
)
def test_fast_engine_matches_erlang_c(workers, rho, hours):
    rate = rho * workers
    out = run_stationary(rate, 1.0, workers, hours=hours, replications=12, seed=101, engine="fast")
    assert out["engine"] == "fast"
    _check(out, rate, workers)
    assert out["utilization"] == pytest.approx(rho, rel=0.02)


@pytest.mark.parametrize(("workers", "rho"), [(2, 0.7), (3, 0.8)])
def test_simpy_engine_matches_erlang_c(workers, rho):
    rate = rho * workers
    out = run_stationary(rate, 1.0, workers, hours=0.6, replications=10, seed=7, engine="simpy")
    assert out["engine"] == "simpy"
    _check(out, rate, workers, max_width=0.6)


@pytest.mark.slow
@pytest.mark.parametrize(("workers", "rho", "hours"), [(10, 0.9, 0.75), (5, 0.95, 1.5)])
def test_simpy_engine_matches_erlang_c_at_high_load(workers, rho, hours):
    rate = rho * workers
    out = run_stationary(rate, 1.0, workers, hours=hours, replications=10, seed=8, engine="simpy")
    _check(out, rate, workers, max_width=0.6)


@pytest.mark.parametrize(("workers", "rho"), [(20, 0.85), (60, 0.95)])
def test_fluid_level_matches_erlang_c_and_the_job_level_engine(workers, rho):
    rate = rho * workers
    fluid = run_stationary(rate, 1.0, workers, hours=1.0, replications=4, seed=3, engine="fluid")
    for key, value in (
        ("mean_wait_s", mean_wait_s(rate, 1.0, workers)),
        ("wait_probability", wait_probability(rate, 1.0, workers)),
        ("wait_p95_s", wait_quantile_s(rate, 1.0, workers, 0.95)),
    ):
        assert fluid[key] == pytest.approx(value, rel=1e-4, abs=1e-9)
    job = run_stationary(rate, 1.0, workers, hours=3.0, replications=10, seed=4, engine="fast")
    for key in ("mean_wait_s", "wait_probability", "wait_p95_s"):
        lo, hi = job[f"{key}_ci95"]
        half = (hi - lo) / 2 * WIDEN
        assert abs(fluid[key] - job[key]) <= half, (key, fluid[key], job[key])


def test_lognormal_service_follows_allen_cunneen_roughly():
    # Allen–Cunneen is an approximation: within 15% of the simulated mean wait at c=10, ρ=0.8
    rate, workers, scv = 8.0, 10, 2.0
    out = run_stationary(
        rate, 1.0, workers, service_scv=scv, hours=6.0, replications=8, seed=5, engine="fast"
    )
    approx = mean_wait_s(rate, 1.0, workers, service_scv=scv)
    assert out["mean_wait_s"] == pytest.approx(approx, rel=0.15)
    assert np.isfinite(out["wait_p95_s"])
