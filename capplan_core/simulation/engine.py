"""``simulate``: run the replications of a scenario on one engine and summarise them.

Engines, one answer:
- ``simpy``: the reference job-level model (``simpy_engine``), clear and slow;
- ``fast``: the same model as a compiled event loop (``fast_engine``), same waits from the
  same seed;
- ``fluid``: a time-stepped queue-length model with stationary Erlang C / Allen–Cunneen waits
  inside each step (``fluid``), for demand too high to simulate job by job;
- ``auto``: ``fast`` while the expected number of jobs over all replications is at most
  ``JOB_LEVEL_BUDGET``, else ``fluid`` (injected inputs always run job by job).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from capplan_core.simulation.fast_engine import run_fast
from capplan_core.simulation.fluid import run_fluid
from capplan_core.simulation.records import JobRunRecord
from capplan_core.simulation.sampling import ReplicationInputs, draw_inputs, replication_rngs
from capplan_core.simulation.scenario import ENGINES, SimScenario, SimulationSummary
from capplan_core.simulation.simpy_engine import run_simpy
from capplan_core.simulation.stats import RepStats, batch_units, job_level_stats, summarise

JOB_LEVEL_BUDGET = 2_000_000  # expected jobs over all replications the fast engine takes on
JobEngine = Callable[[SimScenario, ReplicationInputs], JobRunRecord]
_JOB_ENGINES: dict[str, JobEngine] = {"simpy": run_simpy, "fast": run_fast}


def expected_jobs(scenario: SimScenario) -> float:
    """Expected jobs in one replication (mean over demand paths, plus the backlog)."""
    if scenario.arrival_times_s is not None:
        return float(scenario.arrival_times_s.size + scenario.initial_backlog)
    per_path = scenario.rates_per_s @ np.diff(scenario.window_edges_s)
    return float(per_path.mean()) + scenario.initial_backlog


def choose_engine(scenario: SimScenario, replications: int) -> str:
    """The engine ``auto`` picks: job level within the budget, fluid beyond it."""
    if scenario.arrival_times_s is not None:
        return "fast"
    return "fast" if expected_jobs(scenario) * replications <= JOB_LEVEL_BUDGET else "fluid"


def simulate(scenario: SimScenario, *, replications: int, seed: int,
             engine: str = "auto") -> SimulationSummary:
    """Monte Carlo simulation of a scenario; same seed and engine, same result.

    Args:
        scenario: the pool, its plan, demand paths and SLO.
        replications: independent runs (>= 1); run i uses demand path i % n_paths and the
            i-th stream of ``SeedSequence(seed).spawn(replications)``.
        seed: non-negative integer seed.
        engine: ``auto`` | ``simpy`` | ``fast`` | ``fluid``.

    Raises:
        ValueError: bad replications, seed or engine, or ``fluid`` with injected inputs.
    """
    if isinstance(replications, bool) or not isinstance(replications, int) or replications < 1:
        raise ValueError(f"replications must be an integer >= 1 (got {replications!r})")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer (got {seed!r})")
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES} (got {engine!r})")
    chosen = choose_engine(scenario, replications) if engine == "auto" else engine
    if chosen == "fluid":
        if scenario.arrival_times_s is not None:
            raise ValueError("engine 'fluid' cannot replay injected arrival/service times")
        return summarise(run_fluid(scenario, replications, int(seed)), scenario, "fluid")
    return summarise(_run_job_level(scenario, replications, int(seed), _JOB_ENGINES[chosen]),
                     scenario, chosen)


def _run_job_level(scenario: SimScenario, replications: int, seed: int,
                   run_one: JobEngine) -> RepStats:
    n_w = scenario.n_windows
    fail = np.zeros((replications, n_w), dtype=bool)
    backlog = np.zeros((replications, n_w))
    util = np.zeros((replications, n_w))
    points = np.zeros((replications, 3))
    jobs = np.zeros(replications, dtype=np.int64)
    waits = np.empty(0)
    for i, rng in enumerate(replication_rngs(seed, replications)):
        inputs = draw_inputs(scenario, rng, i)
        record = run_one(scenario, inputs)
        fail[i], backlog[i], util[i], points[i], waits = job_level_stats(scenario, inputs,
                                                                         record)
        jobs[i] = inputs.arrival_times_s.size
    return RepStats(window_fail=fail, window_max_backlog=backlog, window_util=util,
                    mean_wait_s=points[:, 0], wait_prob=points[:, 1], p95_wait_s=points[:, 2],
                    jobs=jobs, units=batch_units(waits) if replications == 1 else None)


def replicate_job_level(scenario: SimScenario, *, seed: int, replication: int = 0,
                        engine: str = "fast") -> tuple[ReplicationInputs, JobRunRecord]:
    """Inputs and raw record of one job-level replication (for tests and diagnostics)."""
    rng = replication_rngs(seed, replication + 1)[replication]
    inputs = draw_inputs(scenario, rng, replication)
    return inputs, _JOB_ENGINES[engine](scenario, inputs)
