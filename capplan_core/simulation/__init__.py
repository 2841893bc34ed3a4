"""Monte Carlo simulation of a worker pool under a capacity plan (docs/CONTRACTS.md).

``simulate(scenario, replications=..., seed=..., engine="auto")`` runs a ``SimScenario`` on the
SimPy reference engine, the compiled fast engine (same answer) or the fluid level (high rates)
and returns a ``SimulationSummary``.
"""

from capplan_core.engine_labels import ENGINE_LABELS, engine_label
from capplan_core.simulation.class_summary import ClassSummary
from capplan_core.simulation.classes import DISCIPLINES, JobClass
from capplan_core.simulation.engine import (
    FAST_JOBS_PER_S,
    INTERACTIVE_JOB_BUDGET,
    JOB_LEVEL_BUDGET,
    choose_engine,
    chunk_bounds,
    expected_jobs,
    replicate_job_level,
    simulate,
    simulate_chunk,
    summarise_chunks,
)
from capplan_core.simulation.records import JobRunRecord
from capplan_core.simulation.sampling import ReplicationInputs, draw_inputs, replication_rngs
from capplan_core.simulation.scenario import ENGINES, SimScenario, SimulationSummary, class_scenario
from capplan_core.simulation.stats import wilson_ci

__all__ = [
    "ClassSummary",
    "DISCIPLINES",
    "JobClass",
    "class_scenario",
    "ENGINES",
    "ENGINE_LABELS",
    "FAST_JOBS_PER_S",
    "INTERACTIVE_JOB_BUDGET",
    "engine_label",
    "JOB_LEVEL_BUDGET",
    "JobRunRecord",
    "ReplicationInputs",
    "SimScenario",
    "SimulationSummary",
    "choose_engine",
    "draw_inputs",
    "expected_jobs",
    "replicate_job_level",
    "replication_rngs",
    "simulate",
    "simulate_chunk",
    "summarise_chunks",
    "wilson_ci",
    "chunk_bounds",
]
