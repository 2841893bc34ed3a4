"""Speed of the simulation engines, as ratios measured in one process.

Run: ``.venv/bin/python bench/bench_simulation.py [--quick]``

1. stationary M/M/c, c = 20, ρ = 0.85: fast engine jobs/s over a plain SimPy model (one
   process per job + ``simpy.Resource``); target >= 200x.
2. time-varying plan (steps, start-up delay, failures): fast engine jobs/s over the same plain
   SimPy baseline, and over capplan's SimPy reference engine on the same scenario; target
   >= 50x.
3. whole horizon: a 24-hour plan (96 windows, steps) with 1,000 replications at rates from
   0.01 to 1,000 jobs/s on ``engine="auto"``; target < 2 s each.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import simpy

from capplan_core.simulation import SimScenario, simulate


def baseline_simpy(
    rate_per_s: float, mean_service_s: float, workers: int, horizon_s: float, seed: int
) -> int:
    """The plain SimPy model: one process per job, a Resource for the pool; returns jobs."""
    rng = np.random.default_rng(seed)
    env = simpy.Environment()
    pool = simpy.Resource(env, capacity=workers)
    waits: list[float] = []

    def job(env: simpy.Environment):  # type: ignore[no-untyped-def]
        arrived = env.now
        with pool.request() as req:
            yield req
            waits.append(env.now - arrived)
            yield env.timeout(rng.exponential(mean_service_s))

    def source(env: simpy.Environment):  # type: ignore[no-untyped-def]
        while True:
            yield env.timeout(rng.exponential(1.0 / rate_per_s))
            env.process(job(env))

    env.process(source(env))
    env.run(until=horizon_s)
    return len(waits)


def jobs_per_s(fn) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    jobs = fn()
    return jobs / (time.perf_counter() - t0)


def interleaved(fast, slow, rounds: int = 5) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    """Median jobs/s of each and the median of per-round ratios, the two measured back to
    back in each round so that load from other processes hits both alike."""
    pairs = [(jobs_per_s(fast), jobs_per_s(slow)) for _ in range(rounds)]
    f, s = (float(np.median(x)) for x in zip(*pairs, strict=True))
    return f, s, float(np.median([a / b for a, b in pairs]))


def time_varying(hours: float) -> SimScenario:
    n_w = int(hours * 4)
    t = np.arange(n_w)
    rates = 12.0 + 6.0 * np.sin(2 * np.pi * t / n_w)  # jobs/s, 6..18
    steps = [(w * 900.0, int(np.ceil(rates[min(w + 1, n_w - 1)] * 1.25))) for w in range(0, n_w, 2)]
    return SimScenario(
        horizon_s=hours * 3600,
        window_s=900,
        rates_per_s=rates,
        initial_workers=16,
        steps=steps,
        mean_service_s=1.0,
        startup_s=60,
        mtbf_s=1800,
        restart_s=30,
        initial_backlog=50,
        slo_wait_s=10,
        slo_max_backlog=200,
    )


def whole_horizon(rate_per_s: float) -> SimScenario:
    n_w = 96
    t = np.arange(n_w)
    rng = np.random.default_rng(7)
    base = rate_per_s * (1.0 + 0.5 * np.sin(2 * np.pi * t / n_w))
    paths = base * rng.lognormal(0.0, 0.1, (200, n_w))
    workers = np.ceil(base * 1.2 + 3).astype(int)
    steps = [(w * 900.0, int(workers[w])) for w in range(0, n_w, 4)]
    return SimScenario(
        horizon_s=86400,
        window_s=900,
        rates_per_s=paths,
        initial_workers=int(workers[0]),
        steps=steps,
        mean_service_s=1.0,
        startup_s=60,
        mtbf_s=6 * 3600,
        restart_s=30,
        slo_wait_s=30,
        slo_max_backlog=5000,
    )


def main(quick: bool) -> None:
    hours = 2.0 if quick else 10.0
    print("| benchmark | capplan | baseline | ratio | target |")
    print("|---|---|---|---|---|")
    mmc = SimScenario(
        horizon_s=hours * 3600,
        window_s=900,
        rates_per_s=np.full(int(hours * 4), 17.0),
        initial_workers=20,
    )
    simulate(mmc, replications=1, seed=0, engine="fast")  # compile

    def base_fn() -> int:
        return baseline_simpy(17.0, 1.0, 20, hours * 3600 / 10, 1)

    fast, base, ratio = interleaved(
        lambda: simulate(mmc, replications=2, seed=1, engine="fast").jobs, base_fn
    )
    print(
        f"| M/M/20 ρ=0.85, jobs/s | {fast:,.0f} | {base:,.0f} (plain SimPy) | "
        f"{ratio:.0f}x | >= 200x |"
    )

    tv = time_varying(hours)
    simulate(tv, replications=1, seed=0, engine="fast")
    short = time_varying(1.0)

    def fast_tv_fn() -> int:
        return simulate(tv, replications=2, seed=1, engine="fast").jobs

    fast_tv, base, ratio = interleaved(fast_tv_fn, base_fn)
    print(
        f"| time-varying (steps, start-up, failures), jobs/s | {fast_tv:,.0f} | "
        f"{base:,.0f} (plain SimPy) | {ratio:.0f}x | >= 50x |"
    )
    fast_tv, ref, ratio = interleaved(
        fast_tv_fn, lambda: simulate(short, replications=1, seed=1, engine="simpy").jobs, 3
    )
    print(
        f"| time-varying, same scenario, jobs/s | {fast_tv:,.0f} | "
        f"{ref:,.0f} (SimPy reference engine) | {ratio:.0f}x | >= 50x |"
    )

    rates = (0.02, 1.0, 1000.0) if quick else (0.01, 0.02, 0.03, 0.1, 1.0, 10.0, 100.0, 1000.0)
    simulate(whole_horizon(1.0), replications=2, seed=0, engine="fluid")  # compile, load
    simulate(whole_horizon(0.01), replications=2, seed=0, engine="fast")
    for rate in rates:
        sc = whole_horizon(rate)
        t0 = time.perf_counter()
        s = simulate(sc, replications=1000, seed=3, engine="auto")
        dt = time.perf_counter() - t0
        print(
            f"| 24 h plan, 1,000 replications, {rate:g} jobs/s | {dt:.2f} s ({s.engine}) | "
            f"| | < 2 s |"
        )


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
