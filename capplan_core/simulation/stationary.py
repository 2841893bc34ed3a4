"""Monte Carlo of a stationary pool: a constant arrival rate on a constant number of workers.

A warm-up of ``WARMUP_SHARE`` of the measured hours is run first and left out, so the figures
estimate the steady state Erlang C describes (``capplan simulate`` and the Erlang validation).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from capplan_core.simulation import INTERACTIVE_JOB_BUDGET, SimScenario, engine_label, simulate

WARMUP_SHARE = 0.1


def run_stationary(
    arrival_rate_per_s: float,
    mean_service_s: float,
    workers: int,
    *,
    service_scv: float | None = None,
    hours: float = 1.0,
    replications: int = 10,
    seed: int = 0,
    engine: str = "auto",
    job_budget: float = INTERACTIVE_JOB_BUDGET,
) -> dict[str, Any]:
    """Simulate a constant arrival rate on a constant pool.

    Service is exponential, or lognormal with SCV ``service_scv`` when given. Returns
    ``mean_wait_s``, ``wait_probability``, ``wait_p95_s`` (each with a ``_ci95`` [low, high]),
    ``utilization``, ``jobs`` simulated (warm-up included), ``engine``, ``engine_label``,
    ``replications`` and ``approximate``. ``auto`` runs the job-level Monte Carlo within
    ``job_budget`` expected jobs (default ~2 s of the fast engine), else the fluid level:
    then ``approximate`` is True and the ``_ci95`` are None (closed forms, no sampling error
    to report; their model error is not estimated here).
    """
    measured_s = hours * 3600.0
    warmup_s = WARMUP_SHARE * measured_s
    horizon_s = warmup_s + measured_s
    scenario = SimScenario(
        horizon_s=horizon_s,
        window_s=horizon_s,
        rates_per_s=np.array([arrival_rate_per_s]),
        initial_workers=workers,
        mean_service_s=mean_service_s,
        service_scv=1.0 if service_scv is None else service_scv,
        service_kind="exponential" if service_scv is None else "lognormal",
        warmup_s=warmup_s,
    )
    s = simulate(
        scenario, replications=replications, seed=seed, engine=engine, job_budget=job_budget
    )
    return {
        "mean_wait_s": s.mean_wait_s,
        "mean_wait_s_ci95": _listed(s.mean_wait_s_ci95),
        "wait_probability": s.wait_probability,
        "wait_probability_ci95": _listed(s.wait_probability_ci95),
        "wait_p95_s": s.p95_wait_s,
        "wait_p95_s_ci95": _listed(s.p95_wait_s_ci95),
        "utilization": s.utilization_range[1],
        "jobs": s.jobs,
        "engine": s.engine,
        "engine_label": engine_label(s.engine),
        "approximate": s.approximate,
        "replications": s.replications,
    }


def _listed(ci: tuple[float, float] | None) -> list[float] | None:
    return None if ci is None else [float(ci[0]), float(ci[1])]
