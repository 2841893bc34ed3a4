"""The demo's ``reports`` queue cannot meet issue 15's cost goal, even knowing its true rate:
its Poisson noise alone costs more than 10 % over the oracle at >= 99 % of windows met
(bench/bench_noise_floor.py, docs/backtest.md)."""

from __future__ import annotations

from bench.bench_noise_floor import noise_floor


def test_a_planner_knowing_the_true_rate_still_costs_over_1_10x_the_oracle() -> None:
    rows = {(r.sizing, r.target): r for r in noise_floor()}
    for r in rows.values():
        assert r.oracle_mean_workers < r.mean_workers     # the oracle also knows the noise
    # reaching the goal's 99 % of windows costs over 1.10x with either sizing
    reaching = [r for r in rows.values() if r.slo_attainment >= 0.99]
    assert reaching and min(r.x_oracle for r in reaching) > 1.10   # measured 1.157x
    assert rows[("per_window", 0.99)].x_oracle > 1.2                # measured 1.211x
