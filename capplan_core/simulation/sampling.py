"""Random inputs of one replication, drawn once and shared by every job-level engine.

Drawing the inputs apart from the event logic is what lets the SimPy and the fast engine give
the same answer from the same seed: both consume the same arrival times, service times and
per-worker-slot failure times.

Arrivals: a non-homogeneous Poisson process with a piecewise-constant rate: exponential gaps
at each window's rate, restarted at each window edge (exact by memorylessness; Ross,
*Simulation*, 5th ed., §5.5).
Lognormal service fitted to mean m and SCV s: σ² = ln(1 + s), μ = ln m − σ²/2.
Shared pools (``scenario.classes``): each class's arrivals are drawn in class order (its own
Poisson process on its own demand path), then merged in time order; ``job_class`` says whose
each job is, and each job's work comes from its class's distribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from capplan_core.simulation.scenario import SimScenario


@dataclass(frozen=True)
class ReplicationInputs:
    """Arrival times (s, sorted; the first ``n_backlog`` are the initial backlog at 0), the
    work of each job (s) and ``failure_draws_s[slot, k]``: the up-time before the k-th failure
    of a worker slot (empty second axis when workers never fail). Shared pools only:
    ``job_class`` (each job's class index) and ``pick_u`` (uniforms for the ``weighted``
    discipline's choices)."""

    arrival_times_s: np.ndarray
    service_times_s: np.ndarray
    n_backlog: int
    failure_draws_s: np.ndarray
    job_class: np.ndarray | None = None
    pick_u: np.ndarray | None = None


@njit(cache=True)
def _poisson_times(
    rng: np.random.Generator, rates_per_s: np.ndarray, edges_s: np.ndarray, capacity: int
) -> np.ndarray:
    out = np.empty(max(capacity, 16))
    n = 0
    for w in range(rates_per_s.size):
        rate = rates_per_s[w]
        if rate <= 0.0:
            continue
        t, end = edges_s[w], edges_s[w + 1]
        while True:
            # restarting at each window edge is exact: the overshoot is memoryless
            t += rng.standard_exponential() / rate
            if t >= end:
                break
            if n == out.size:
                grown = np.empty(2 * out.size)
                grown[:n] = out[:n]
                out = grown
            out[n] = t
            n += 1
    return out[:n].copy()


def arrival_times(
    rates_per_s: np.ndarray, edges_s: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Arrival times (s) in [0, edges_s[-1]) of a Poisson process with rate ``rates_per_s[w]``
    on window [edges_s[w], edges_s[w+1]): exponential gaps at each window's rate, drawn in a
    compiled loop from ``rng`` itself (numba shares the generator's state)."""
    expected = float(np.dot(rates_per_s, np.diff(edges_s)))
    capacity = int(expected + 6.0 * math.sqrt(expected) + 20)
    return _poisson_times(
        rng,
        np.ascontiguousarray(rates_per_s, dtype=float),
        np.ascontiguousarray(edges_s, dtype=float),
        capacity,
    )


def service_times(scenario: SimScenario, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` service times (s) from the scenario's service distribution."""
    return draw_service(
        scenario.service_kind,
        scenario.mean_service_s,
        scenario.service_scv,
        scenario.service_samples_s,
        n,
        rng,
    )


def draw_service(
    kind: str,
    mean_s: float,
    scv: float,
    samples_s: np.ndarray | None,
    n: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """``n`` service times (s): exponential, lognormal (mean, SCV) or resampled samples."""
    if kind == "exponential":
        return rng.exponential(mean_s, n)
    if kind == "lognormal":
        if scv == 0.0:
            return np.full(n, mean_s)
        sigma2 = math.log1p(scv)
        return rng.lognormal(math.log(mean_s) - sigma2 / 2.0, math.sqrt(sigma2), n)
    samples = np.asarray(samples_s, dtype=float)
    return samples[rng.integers(0, samples.size, n)]


def failure_draws(scenario: SimScenario, rng: np.random.Generator) -> np.ndarray:
    """Up-times (s) before each failure, per worker slot; enough for the whole run except with
    negligible probability (beyond 8 standard deviations of the Poisson failure count), after
    which a slot simply stops failing."""
    if scenario.mtbf_s is None:
        return np.empty((scenario.max_slots, 0))
    expected = scenario.stop_s / scenario.mtbf_s
    k = int(math.ceil(expected + 8.0 * math.sqrt(expected) + 8))
    return rng.exponential(scenario.mtbf_s, (scenario.max_slots, k))


def draw_inputs(
    scenario: SimScenario, rng: np.random.Generator, replication: int
) -> ReplicationInputs:
    """The random inputs of replication ``replication`` (demand path ``replication % n_paths``)."""
    if scenario.classes:
        return draw_class_inputs(scenario, rng, replication)
    n_backlog = scenario.initial_backlog
    if scenario.arrival_times_s is not None and scenario.service_times_s is not None:
        arrivals = np.asarray(scenario.arrival_times_s, dtype=float)
        services = np.asarray(scenario.service_times_s, dtype=float)
    else:
        path = scenario.rates_per_s[replication % scenario.rates_per_s.shape[0]]
        arrivals = arrival_times(path, scenario.window_edges_s, rng)
        services = service_times(scenario, n_backlog + arrivals.size, rng)
    times = np.concatenate((np.zeros(n_backlog), arrivals)) if n_backlog else arrivals
    return ReplicationInputs(
        arrival_times_s=times,
        service_times_s=services,
        n_backlog=n_backlog,
        failure_draws_s=failure_draws(scenario, rng),
    )


def draw_class_inputs(
    scenario: SimScenario, rng: np.random.Generator, replication: int
) -> ReplicationInputs:
    """Random inputs of a shared pool's replication: per class (in order) its arrivals, then
    its service times (backlog jobs first), merged by arrival time (ties: class order)."""
    edges = scenario.window_edges_s
    times, works, owner = [], [], []
    for k, c in enumerate(scenario.classes):
        path = c.rates_per_s[replication % c.rates_per_s.shape[0]]
        arr = arrival_times(path, edges, rng)
        nb = int(c.initial_backlog)
        times.append(np.concatenate((np.zeros(nb), arr)))
        works.append(
            draw_service(
                c.service_kind,
                c.mean_service_s,
                c.service_scv,
                c.service_samples_s,
                nb + arr.size,
                rng,
            )
        )
        owner.append(np.full(nb + arr.size, k, dtype=np.int64))
    t, s, o = np.concatenate(times), np.concatenate(works), np.concatenate(owner)
    backlog = np.zeros(t.size, dtype=bool)
    start = 0
    for k, c in enumerate(scenario.classes):
        backlog[start : start + int(c.initial_backlog)] = True
        start += times[k].size
    order = np.lexsort((o, t, ~backlog))  # backlog first (class order), then time, class
    pick_u = rng.random(max(t.size, 1)) if scenario.discipline == "weighted" else None
    return ReplicationInputs(
        arrival_times_s=t[order],
        service_times_s=s[order],
        n_backlog=scenario.initial_backlog,
        failure_draws_s=failure_draws(scenario, rng),
        job_class=o[order],
        pick_u=pick_u,
    )


def replication_rngs(seed: int, replications: int) -> list[np.random.Generator]:
    """Independent generators, one per replication, from ``SeedSequence(seed).spawn(n)``."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(replications)]
