"""The fluid (time-stepped) fidelity level, for demand too high to simulate job by job.

Each replication is stepped in ``FLUID_STEP_S``-second steps (windows split evenly), vectorised
work inside a compiled loop (``fluid_kernels``): a fluid backlog carries overloads and drains,
and stationary Erlang C / Allen–Cunneen waits describe each step's queueing. The pool follows
the plan deterministically (start-up delay on the way up, at once on the way down); failures
take a random share of the ready workers per window, Binomial with the steady-state down
probability restart_s / (mtbf_s + restart_s). Between replications, variability comes from the
demand paths and the failures; within a step the stationary formulas stand for Poisson noise,
which is accurate when many jobs arrive per step (the regime ``auto`` sends here).
Approximations: a failed worker's lost work is ignored; the backlog is the fluid backlog plus
the stationary mean queue.
"""

from __future__ import annotations

import math

import numpy as np

from capplan_core.simulation.fluid_kernels import run_fluid_kernel
from capplan_core.simulation.scenario import SimScenario
from capplan_core.simulation.stats import RepStats, judged_windows

FLUID_STEP_S = 60.0


def ready_schedule(scenario: SimScenario) -> tuple[np.ndarray, np.ndarray]:
    """Change times (s) and ready-worker counts of the planned pool, without failures."""
    sc = scenario
    ready = sc.effective_target(sc.initial_workers)
    pending: list[float] = []  # ready times of starting workers
    changes: list[tuple[float, int]] = [(0.0, ready)]

    def flush(until: float) -> None:
        nonlocal ready
        pending.sort()
        while pending and pending[0] <= until:
            ready += 1
            changes.append((pending.pop(0), ready))

    for t_s, target in sc.steps:
        flush(t_s)
        target = sc.effective_target(target)
        active = ready + len(pending)
        if target > active:
            pending.extend([t_s + sc.startup_s] * (target - active))
            flush(t_s)
        else:
            excess = active - target
            cancel = min(excess, len(pending))
            pending.sort()
            del pending[len(pending) - cancel :]
            ready -= excess - cancel
            changes.append((t_s, ready))
    flush(math.inf)
    times = np.array([t for t, _ in changes])
    counts = np.array([c for _, c in changes], dtype=np.int64)
    return times, counts


def _grid(scenario: SimScenario) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step start times, lengths and windows: each window split into equal steps."""
    edges = scenario.window_edges_s
    n_sub = max(1, math.ceil(scenario.window_s / FLUID_STEP_S - 1e-9))
    frac = np.arange(n_sub) / n_sub
    lengths = np.diff(edges)
    starts = (edges[:-1, None] + lengths[:, None] * frac[None, :]).ravel()
    step_len = np.repeat(lengths / n_sub, n_sub)
    step_win = np.repeat(np.arange(edges.size - 1), n_sub)
    return starts, step_len, step_win


def run_fluid(scenario: SimScenario, replications: int, seed: int) -> RepStats:
    """Fluid-level replications of a scenario (same seed, same result)."""
    sc = scenario
    starts, step_len, step_win = _grid(sc)
    times, counts = ready_schedule(sc)
    mid = starts + step_len / 2
    step_ready = counts[np.searchsorted(times, mid, side="right") - 1]
    # time from a step with no ready worker until the pool has one again
    has = step_ready > 0
    next_has = np.full(step_ready.size, np.nan)
    idx = np.flatnonzero(has)
    if idx.size:
        pos = np.searchsorted(idx, np.arange(step_ready.size))
        ok = pos < idx.size
        next_has[ok] = starts[idx[pos[ok]]]
    wait_floor = np.where(np.isnan(next_has), sc.stop_s, next_has) - starts
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    n_w = sc.n_windows
    down = np.zeros((replications, n_w))
    if sc.mtbf_s is not None and sc.restart_s > 0:
        p_down = sc.restart_s / (sc.mtbf_s + sc.restart_s)
        peak = np.maximum(
            np.maximum.reduceat(step_ready, np.searchsorted(step_win, np.arange(n_w))), 1
        )
        down = rng.binomial(np.broadcast_to(peak, (replications, n_w)), p_down) / peak
    mean_s, scv = sc.service_moments
    paths = np.arange(replications) % sc.rates_per_s.shape[0]
    late = np.zeros((replications, n_w))
    backlog = np.zeros((replications, n_w))
    util = np.zeros((replications, n_w))
    points = np.zeros((replications, 3))
    jobs = np.zeros(replications)
    run_fluid_kernel(
        sc.rates_per_s,
        paths,
        step_len,
        step_win,
        step_ready.astype(np.int64),
        wait_floor,
        down,
        (starts >= sc.warmup_s),
        1.0 / mean_s,
        (1.0 + scv) / 2.0,
        float(sc.initial_backlog),
        -1.0 if sc.slo_wait_s is None else float(sc.slo_wait_s),
        late,
        backlog,
        util,
        points,
        jobs,
    )
    fail = np.zeros((replications, n_w), dtype=bool)
    if sc.slo_wait_s is not None:
        fail |= late > (1.0 - sc.slo_wait_quantile) + 1e-9
    if sc.slo_max_backlog is not None:
        fail |= backlog > sc.slo_max_backlog
    fail &= judged_windows(sc)
    return RepStats(
        window_fail=fail,
        window_max_backlog=backlog,
        window_util=util,
        mean_wait_s=points[:, 0],
        wait_prob=points[:, 1],
        p95_wait_s=points[:, 2],
        jobs=np.round(jobs + sc.initial_backlog).astype(np.int64),
    )
