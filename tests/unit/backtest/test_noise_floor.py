"""The demo's ``reports`` queue cannot meet issue 15's cost goal, even knowing its true rate:
its Poisson noise alone costs more than 10 % over the oracle at >= 99 % of windows met
(bench/bench_noise_floor.py, docs/backtest.md)."""

from __future__ import annotations

from bench.bench_noise_floor import noise_floor


def test_a_planner_knowing_the_true_rate_still_costs_over_1_10x_the_oracle() -> None:
    rows = {(r.sizing, r.target): r for r in noise_floor()}
    for r in rows.values():
        assert r.oracle_mean_workers < r.mean_workers  # the oracle also knows the noise
    # reaching the goal's 99 % of windows costs over 1.10x with either sizing
    reaching = [r for r in rows.values() if r.slo_attainment >= 0.99]
    assert reaching and min(r.x_oracle for r in reaching) > 1.10  # measured 1.157x
    assert rows[("per_window", 0.99)].x_oracle > 1.2  # measured 1.211x


def test_the_backtests_rate_oracle_is_close_to_the_exact_floor_on_reports() -> None:
    # issue 22: capplan backtest's rate oracle estimates the rate from the demand that came
    # (no generator to read); on reports, whose true rate is known, it lands within a few %
    # of the exact floor above (measured 1.134x against 1.157x) and meets the target
    import pandas as pd

    from bench.bench_noise_floor import DEMO_END, ROOT
    from capplan_core.backtest.demand import demand_trace
    from capplan_core.backtest.rate_oracle import rate_oracle_workers
    from capplan_core.backtest.replay import replay
    from capplan_core.backtest.scoring import score_replay
    from capplan_core.backtest.strategies import ScheduleController, oracle_workers
    from capplan_core.metrics.file_source import read_metrics_file
    from capplan_core.policy import load_policies

    pol = {p.name: p for p in load_policies(ROOT / "data/demo/policies.yaml")}["reports"]
    frame = read_metrics_file(ROOT / "data/demo/metrics.csv.gz")
    rows = frame.loc[frame["queue"] == pol.queue].reset_index(drop=True)
    trace = demand_trace(
        rows, queue=pol.queue, start=DEMO_END - pd.Timedelta(days=2), end=DEMO_END, window_s=900.0
    )

    def score(name: str, counts):  # type: ignore[no-untyped-def]
        rep = replay(trace, ScheduleController(name, counts, 900.0, trace.starts[0]))
        return score_replay(trace, rep, pol)

    oracle, rate = (
        score("oracle", oracle_workers(trace, pol)),
        score("rate_oracle", rate_oracle_workers(trace, pol)),
    )
    ratio = rate.worker_hours / oracle.worker_hours
    assert 1.10 < ratio < 1.157 + 0.01
    assert rate.slo_attainment >= 0.99
