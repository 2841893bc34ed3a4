"""The noise floor of the demo's ``reports`` queue: what a planner that knew its true rate costs.

    .venv/bin/python bench/bench_noise_floor.py

The demo's ``reports`` arrivals are Poisson counts per minute around a known daily profile,
λ(t) = 0.06 · (1 + 0.6 cos(2π (h − 9) / 24)) jobs/s (scripts/generate_demo_data.py). The
backtest's oracle sizes each 15-minute window to the demand that *came*, so it also knows
the Poisson noise of that window, which no forecast can. This benchmark replays, over the
same last two days the backtest scores, a planner that knows λ(t) exactly and only not the
noise: each window's count Λ is Poisson(λ̄ · 900), so with c workers the window meets the SLO
with probability P(Λ / 900 ≤ λ_max(c)), where λ_max(c) is the largest rate c workers serve
within the policy's SLO (exact queueing, ``pooled_sizing.capacity_fn``). It sizes

- ``per_window``: each window to P(met) ≥ q;
- ``pooled``: the cheapest counts whose mean P(met) over the period is ≥ q (the greedy
  marginal allocation of ``slo.attainment_mode: pooled``, each window at least 0.90);

with workers ready the instant they are commanded and no dwell, hysteresis or action cost
(the oracle's own advantages), and scores both exactly as the backtest scores every strategy.
Its worker-hours against the oracle's are a lower bound on what *any* forecaster can reach on
this queue at that attainment: the real planner also pays startup lead and calm plans.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from capplan_core.backtest.demand import DemandTrace, demand_trace  # noqa: E402
from capplan_core.backtest.replay import replay  # noqa: E402
from capplan_core.backtest.scoring import score_replay  # noqa: E402
from capplan_core.backtest.strategies import ScheduleController, oracle_workers  # noqa: E402
from capplan_core.metrics.file_source import read_metrics_file  # noqa: E402
from capplan_core.planning.pooled_sizing import capacity_fn  # noqa: E402
from capplan_core.planning.window_sizing import slo_terms_from_policy  # noqa: E402
from capplan_core.policy import ScalingPolicy, load_policies  # noqa: E402

DEMO_END = pd.Timestamp("2026-11-20T12:00:00Z")  # the demo data's end
WINDOW_FLOOR = 0.90  # pooled: no window below this P(met)


def reports_true_rate_per_s(window_start: pd.Timestamp, window_s: float) -> float:
    """The generator's mean arrival rate of ``reports`` over one window (jobs/s)."""
    minutes = pd.date_range(window_start, periods=int(window_s // 60), freq="1min")
    hours = minutes.hour + minutes.minute / 60.0
    return float(np.mean(0.06 * (1.0 + 0.6 * np.cos(2 * np.pi * (hours - 9.0) / 24.0))))


@dataclass(frozen=True)
class FloorRow:
    sizing: str
    target: float
    slo_attainment: float
    x_oracle: float
    mean_workers: float
    oracle_mean_workers: float


def met_probability(trace: DemandTrace, policy: ScalingPolicy) -> tuple[np.ndarray, np.ndarray]:
    """(counts 1..max_workers, P[window, count] that the window meets the SLO)."""
    counts = np.arange(1, policy.scaling.max_workers + 1)
    terms = slo_terms_from_policy(policy, 0.0)
    p = np.zeros((len(trace), len(counts)))
    for i, start in enumerate(trace.starts):
        mean_jobs = reports_true_rate_per_s(start, trace.window_s) * trace.window_s
        # λ_max(c): the largest rate c workers serve within the SLO (the planner's own)
        capacity = capacity_fn(
            1.0 / float(trace.service_rate_per_s[i]), float(trace.service_scv[i])
        )
        for j, c in enumerate(counts):
            served = capacity(int(c), terms) * trace.window_s
            p[i, j] = stats.poisson.cdf(math.floor(served), mean_jobs)
    return counts, p


def per_window(counts: np.ndarray, p: np.ndarray, target: float) -> np.ndarray:
    return counts[np.argmax(p >= target, axis=1)]


def pooled(counts: np.ndarray, p: np.ndarray, target: float) -> np.ndarray:
    rows = np.arange(len(p))
    k = np.argmax(p >= WINDOW_FLOOR, axis=1)
    while p[rows, k].mean() < target:
        nxt = np.minimum(k + 1, len(counts) - 1)
        gain = np.where(k + 1 < len(counts), p[rows, nxt] - p[rows, k], -1.0)
        k[int(np.argmax(gain))] += 1
    return counts[k]


def noise_floor(targets: tuple[float, ...] = (0.99, 0.995)) -> list[FloorRow]:
    frame = read_metrics_file(ROOT / "data/demo/metrics.csv.gz")
    policy = {p.name: p for p in load_policies(ROOT / "data/demo/policies.yaml")}["reports"]
    rows = frame.loc[frame["queue"] == policy.queue].reset_index(drop=True)
    window_s = policy.forecast.interval_minutes * 60.0
    trace = demand_trace(
        rows,
        queue=policy.queue,
        start=DEMO_END - pd.Timedelta(days=2),
        end=DEMO_END,
        window_s=window_s,
    )
    oracle = oracle_workers(trace, policy)

    def score(name: str, schedule: np.ndarray) -> tuple[float, float]:
        rep = replay(trace, ScheduleController(name, schedule, window_s, trace.starts[0]))
        s = score_replay(trace, rep, policy)
        return s.slo_attainment, s.worker_hours

    _, oracle_wh = score("oracle", oracle)
    counts, p = met_probability(trace, policy)
    out = []
    for target in targets:
        for sizing, schedule in (
            ("per_window", per_window(counts, p, target)),
            ("pooled", pooled(counts, p, target)),
        ):
            met, wh = score(f"{sizing} {target}", schedule)
            out.append(
                FloorRow(
                    sizing,
                    target,
                    met,
                    wh / oracle_wh,
                    float(schedule.mean()),
                    float(oracle.mean()),
                )
            )
    return out


def main() -> None:
    print("| sizing (true rate known) | target | SLO met | x oracle | mean workers (oracle) |")
    print("|---|---|---|---|---|")
    for r in noise_floor():
        print(
            f"| {r.sizing} | {r.target} | {r.slo_attainment:.1%} | {r.x_oracle:.3f} | "
            f"{r.mean_workers:.2f} ({r.oracle_mean_workers:.2f}) |"
        )


if __name__ == "__main__":
    main()
