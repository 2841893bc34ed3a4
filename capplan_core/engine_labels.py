"""What proved a simulation result, in words a person reads (plans, artifacts, the CLI).

Kept apart from :mod:`capplan_core.simulation` so that showing a plan never loads the
simulation engines (numba).
"""

ENGINE_LABELS = {
    "fast": "job-level Monte Carlo (fast engine)",
    "simpy": "job-level Monte Carlo (SimPy engine)",
    "fluid": "approximate: fluid level (Erlang C / Allen-Cunneen waits per 60 s step)",
}


def engine_label(engine: str) -> str:
    """What proved a result, for a person: job-level Monte Carlo, or approximate (fluid)."""
    return ENGINE_LABELS.get(engine, f"{engine} engine")
