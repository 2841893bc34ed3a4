"""``simulate``: run the replications of a scenario on one engine and summarise them.

Engines, one answer:
- ``simpy``: the reference job-level model (``simpy_engine``), clear and slow;
- ``fast``: the same model as a compiled event loop (``fast_engine``), same waits from the
  same seed;
- ``fluid``: a time-stepped queue-length model with stationary Erlang C / Allen–Cunneen waits
  inside each step (``fluid``), for demand too high to simulate job by job;
- ``auto``: ``fast`` while the expected number of jobs over all replications is at most the
  job budget, else ``fluid`` (injected inputs always run job by job). The budget is time
  turned into jobs at ``FAST_JOBS_PER_S``: ``INTERACTIVE_JOB_BUDGET`` (~2 s) when a person
  asks (``capplan simulate``, a stored plan re-simulated), ``JOB_LEVEL_BUDGET`` per simulate
  call in the planning cycle unless the caller passes its own (``CAPPLAN_SIMULATION_JOB_BUDGET``).
  The fluid level's answer is flagged ``approximate`` with null wait intervals.

Shared pools (``scenario.classes``) run job by job only (the fluid level has no classes):
``auto`` picks ``fast`` whatever the budget, ``fluid`` is refused; the summary's ``classes``
holds each class's waits (``class_stats``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from capplan_core.simulation.class_stats import class_batch_units, class_job_stats
from capplan_core.simulation.fast_classes import run_fast_classes
from capplan_core.simulation.fast_engine import run_fast
from capplan_core.simulation.fluid import run_fluid
from capplan_core.simulation.records import JobRunRecord
from capplan_core.simulation.sampling import ReplicationInputs, draw_inputs, replication_rngs
from capplan_core.simulation.scenario import ENGINES, SimScenario, SimulationSummary
from capplan_core.simulation.simpy_engine import run_simpy
from capplan_core.simulation.stats import RepStats, batch_units, job_level_stats, summarise

# The fast engine's throughput, jobs simulated per second, measured conservatively (14-17 M/s
# on an idle core of the 2-core CI machine, 6 M/s under load, JIT warm).
FAST_JOBS_PER_S = 6_000_000
INTERACTIVE_BUDGET_S = 2.0
INTERACTIVE_JOB_BUDGET = int(FAST_JOBS_PER_S * INTERACTIVE_BUDGET_S)
# Planning cycle default: ~1/3 s of fast engine per simulate call, so a cycle of 1,000 queues
# (up to 3 attempts each) stays within ~15 min on one core and ~2 min over the task runner.
JOB_LEVEL_BUDGET = 2_000_000
JobEngine = Callable[[SimScenario, ReplicationInputs], JobRunRecord]


def _run_fast_any(scenario: SimScenario, inputs: ReplicationInputs) -> JobRunRecord:
    if scenario.classes:
        return run_fast_classes(scenario, inputs)
    return run_fast(scenario, inputs)


_JOB_ENGINES: dict[str, JobEngine] = {"simpy": run_simpy, "fast": _run_fast_any}


def expected_jobs(scenario: SimScenario) -> float:
    """Expected jobs in one replication (mean over demand paths, plus the backlog)."""
    if scenario.arrival_times_s is not None:
        return float(scenario.arrival_times_s.size + scenario.initial_backlog)
    per_path = scenario.rates_per_s @ np.diff(scenario.window_edges_s)
    return float(per_path.mean()) + scenario.initial_backlog


def choose_engine(
    scenario: SimScenario, replications: int, job_budget: float = JOB_LEVEL_BUDGET
) -> str:
    """The engine ``auto`` picks: job level within ``job_budget`` expected jobs over all
    replications, fluid beyond it (a shared pool always runs job by job)."""
    if scenario.arrival_times_s is not None or scenario.classes:
        return "fast"
    return "fast" if expected_jobs(scenario) * replications <= job_budget else "fluid"


def simulate(
    scenario: SimScenario,
    *,
    replications: int,
    seed: int,
    engine: str = "auto",
    job_budget: float = JOB_LEVEL_BUDGET,
) -> SimulationSummary:
    """Monte Carlo simulation of a scenario; same seed and engine, same result.

    Args:
        scenario: the pool, its plan, demand paths and SLO.
        replications: independent runs (>= 1); run i uses demand path i % n_paths and the
            i-th stream of ``SeedSequence(seed).spawn(replications)``.
        seed: non-negative integer seed.
        engine: ``auto`` | ``simpy`` | ``fast`` | ``fluid``.
        job_budget: expected jobs over all replications ``auto`` runs job by job.

    Raises:
        ValueError: bad replications, seed or engine, or ``fluid`` with injected inputs.
    """
    if isinstance(replications, bool) or not isinstance(replications, int) or replications < 1:
        raise ValueError(f"replications must be an integer >= 1 (got {replications!r})")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer (got {seed!r})")
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES} (got {engine!r})")
    chosen = choose_engine(scenario, replications, job_budget) if engine == "auto" else engine
    if chosen == "fluid":
        if scenario.arrival_times_s is not None:
            raise ValueError("engine 'fluid' cannot replay injected arrival/service times")
        if scenario.classes:
            raise ValueError("engine 'fluid' has no job classes: use 'fast' or 'simpy'")
        return summarise(run_fluid(scenario, replications, int(seed)), scenario, "fluid")
    return summarise(
        _run_job_level(scenario, replications, int(seed), _JOB_ENGINES[chosen]), scenario, chosen
    )


def _run_job_level(
    scenario: SimScenario,
    replications: int,
    seed: int,
    run_one: JobEngine,
    start: int = 0,
    stop: int | None = None,
) -> RepStats:
    """Replications ``start..stop`` of ``replications`` (each on its own spawned stream)."""
    stop = replications if stop is None else stop
    n_w, n = scenario.n_windows, stop - start
    fail = np.zeros((n, n_w), dtype=bool)
    backlog = np.zeros((n, n_w))
    util = np.zeros((n, n_w))
    points = np.zeros((n, 3))
    jobs = np.zeros(n, dtype=np.int64)
    waits = np.empty(0)
    n_cls = len(scenario.classes)
    cls_points, cls_fail = np.zeros((n, n_cls, 4)), np.zeros((n, n_cls), dtype=bool)
    cls_jobs = np.zeros(n_cls, dtype=np.int64)
    kept: list[np.ndarray] = []
    rngs = replication_rngs(seed, replications)[start:stop]
    for i, rng in enumerate(rngs):
        inputs = draw_inputs(scenario, rng, start + i)
        record = run_one(scenario, inputs)
        fail[i], backlog[i], util[i], points[i], waits = job_level_stats(scenario, inputs, record)
        jobs[i] = inputs.arrival_times_s.size
        if n_cls:
            fail_any, cls_fail[i], cls_points[i], kept = class_job_stats(scenario, inputs, record)
            fail[i] |= fail_any
            cls_jobs += np.bincount(np.asarray(inputs.job_class), minlength=n_cls)
    single = replications == 1
    return RepStats(
        window_fail=fail,
        window_max_backlog=backlog,
        window_util=util,
        mean_wait_s=points[:, 0],
        wait_prob=points[:, 1],
        p95_wait_s=points[:, 2],
        jobs=jobs,
        units=batch_units(waits) if single else None,
        class_points=cls_points if n_cls else None,
        class_fail=cls_fail if n_cls else None,
        class_jobs=cls_jobs if n_cls else None,
        class_units=class_batch_units(scenario, kept) if n_cls and single else None,
    )


def chunk_bounds(replications: int, chunks: int) -> list[tuple[int, int]]:
    """Split ``range(replications)`` into at most ``chunks`` contiguous, non-empty parts."""
    chunks = max(1, min(chunks, replications))
    edges = np.linspace(0, replications, chunks + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def simulate_chunk(
    scenario: SimScenario, *, replications: int, seed: int, engine: str, start: int, stop: int
) -> RepStats:
    """Replications ``start..stop`` of a job-level run: what one worker of a fan-out does.

    Chunks merged with :func:`summarise_chunks` give exactly what ``simulate`` gives in one
    process (same streams, same engine), so fanning out changes speed, never the answer.
    """
    if engine not in _JOB_ENGINES:
        raise ValueError(
            f"chunked runs need a job-level engine {tuple(_JOB_ENGINES)} (got {engine!r})"
        )
    return _run_job_level(scenario, replications, int(seed), _JOB_ENGINES[engine], start, stop)


def summarise_chunks(
    chunks: list[RepStats], scenario: SimScenario, engine: str
) -> SimulationSummary:
    """One summary from the chunks of a fanned-out job-level run (in replication order)."""
    if len(chunks) == 1:
        return summarise(chunks[0], scenario, engine)
    merged = RepStats(
        window_fail=np.concatenate([c.window_fail for c in chunks]),
        window_max_backlog=np.concatenate([c.window_max_backlog for c in chunks]),
        window_util=np.concatenate([c.window_util for c in chunks]),
        mean_wait_s=np.concatenate([c.mean_wait_s for c in chunks]),
        wait_prob=np.concatenate([c.wait_prob for c in chunks]),
        p95_wait_s=np.concatenate([c.p95_wait_s for c in chunks]),
        jobs=np.concatenate([c.jobs for c in chunks]),
        units=None,
    )
    if scenario.classes:
        merged.class_points = np.concatenate(
            [c.class_points for c in chunks if c.class_points is not None]
        )
        merged.class_fail = np.concatenate(
            [c.class_fail for c in chunks if c.class_fail is not None]
        )
        merged.class_jobs = np.sum(
            [c.class_jobs for c in chunks if c.class_jobs is not None], axis=0
        )
    return summarise(merged, scenario, engine)


def replicate_job_level(
    scenario: SimScenario, *, seed: int, replication: int = 0, engine: str = "fast"
) -> tuple[ReplicationInputs, JobRunRecord]:
    """Inputs and raw record of one job-level replication (for tests and diagnostics)."""
    rng = replication_rngs(seed, replication + 1)[replication]
    inputs = draw_inputs(scenario, rng, replication)
    return inputs, _JOB_ENGINES[engine](scenario, inputs)
