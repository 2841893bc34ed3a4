"""A plan as a simulation scenario: the policy's pool and SLO, the plan's steps, demand paths.

The one translation from a policy and a plan to :class:`SimScenario`, used when a fresh plan is
proven (:mod:`capplan_core.planning.decide`) and when a stored plan is re-simulated
(:mod:`capplan_core.planning.resimulate`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

import numpy as np

from capplan_core.planning.pool_state import QueueState
from capplan_core.policy import ScalingPolicy
from capplan_core.simulation import SimScenario

EXPONENTIAL_SCV_TOLERANCE = 0.05  # service SCV this close to 1 is simulated as exponential
MAX_DEMAND_PATHS = 200  # demand paths drawn per simulation (replications reuse them)


def service_kind(service_scv: float) -> Literal["exponential", "lognormal"]:
    """``exponential`` when the SCV is ~1, else ``lognormal`` with that SCV."""
    return "exponential" if abs(service_scv - 1.0) < EXPONENTIAL_SCV_TOLERANCE else "lognormal"


def plan_scenario(
    policy: ScalingPolicy,
    state: QueueState,
    steps: Iterable[tuple[datetime, int]],
    *,
    start: datetime,
    window_s: float,
    demand_paths: np.ndarray,
    judged_from: datetime | None = None,
) -> SimScenario:
    """The scenario of a plan: ``steps`` are (execute_at, to_workers) from ``start``.

    ``demand_paths`` has one row per path and one column per window of ``window_s`` seconds;
    the horizon is their number of windows. ``judged_from`` (the plan's now, inside its first
    window): only what happens from then on is judged; the minutes of the first window already
    past are played as warm-up (nobody can change them any more).
    """
    sim = policy.simulation
    return SimScenario(
        horizon_s=window_s * demand_paths.shape[1],
        window_s=window_s,
        rates_per_s=demand_paths,
        initial_workers=int(state.current_workers),
        steps=[(max(0.0, (at - start).total_seconds()), int(to)) for at, to in steps],
        mean_service_s=state.mean_service_s,
        service_scv=state.service_scv,
        service_kind=service_kind(state.service_scv),
        startup_s=policy.scaling.startup_seconds,
        mtbf_s=sim.mtbf_seconds,
        restart_s=sim.restart_seconds,
        quota_workers=sim.quota_workers,
        initial_backlog=int(round(state.current_backlog)),
        slo_wait_s=policy.slo.wait_seconds,
        slo_wait_quantile=policy.slo.wait_quantile,
        slo_max_backlog=policy.slo.max_backlog,
        warmup_s=elapsed_s(start, judged_from, window_s * demand_paths.shape[1]),
    )


def elapsed_s(start: datetime, judged_from: datetime | None, horizon_s: float) -> float:
    """Seconds from ``start`` to ``judged_from``, within [0, horizon)."""
    if judged_from is None:
        return 0.0
    elapsed = (judged_from - start).total_seconds()
    return elapsed if 0.0 < elapsed < horizon_s else 0.0
