"""Monte Carlo replications fanned out through the run's Prefect task runner.

Each chunk of replications is a task run (threads by default; a ``ProcessPoolTaskRunner`` or a
Dask task runner from ``prefect-dask`` for a cluster — set it on the flow with
``.with_options(task_runner=...)``). Chunks use the same per-replication random streams as a
single-process run, so the merged answer is identical; the fluid level is vectorised already
and is not split.
"""

from capplan_app.settings import get_settings
from capplan_core.simulation import (
    SimScenario,
    SimulationSummary,
    choose_engine,
    chunk_bounds,
    simulate,
    simulate_chunk,
    summarise_chunks,
)
from tasks.common import capplan_task

MIN_REPLICATIONS_PER_CHUNK = 25
DEFAULT_CHUNKS = 4

simulate_replications = capplan_task(
    simulate_chunk,
    name="simulate-replications",
    task_run_name="simulate-replications-{start}-{stop}",
)


def fanout_simulate(
    scenario: SimScenario,
    *,
    replications: int,
    seed: int,
    engine: str = "auto",
    chunks: int = DEFAULT_CHUNKS,
    job_budget: float | None = None,
) -> SimulationSummary:
    """``simulate`` with job-level replications split across task runs; ``auto`` runs job by
    job within ``job_budget`` expected jobs (None: ``CAPPLAN_SIMULATION_JOB_BUDGET``)."""
    budget = get_settings().simulation_job_budget if job_budget is None else job_budget
    chosen = choose_engine(scenario, replications, budget) if engine == "auto" else engine
    n_chunks = min(chunks, replications // MIN_REPLICATIONS_PER_CHUNK)
    if chosen == "fluid" or n_chunks < 2:
        return simulate(scenario, replications=replications, seed=seed, engine=chosen)
    futures = [
        simulate_replications.submit(
            scenario, replications=replications, seed=seed, engine=chosen, start=a, stop=b
        )
        for a, b in chunk_bounds(replications, n_chunks)
    ]
    return summarise_chunks([f.result() for f in futures], scenario, chosen)
