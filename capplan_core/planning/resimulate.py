"""Re-simulate a stored plan (``capplan simulate --plan ID``) from what the store kept.

Demand paths come from the stored forecast: its mean and 80 % band, read as a normal
distribution per window (sigma = band width / (2 * 1.2816)), truncated at zero. The pool
state (workers, backlog, service time and SCV) and the steps are the plan's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from capplan_core.planning.plan_scenario import MAX_DEMAND_PATHS, plan_scenario
from capplan_core.planning.pool_state import QueueState
from capplan_core.planning.repository import PlanRepository
from capplan_core.planning.stored_plan import ForecastPoint, StoredPlan
from capplan_core.policy import ScalingPolicy
from capplan_core.simulation import INTERACTIVE_JOB_BUDGET, SimScenario, engine_label, simulate

Z80 = 1.2815515655446004  # standard normal quantile at 0.9


def stored_pool_state(plan: StoredPlan) -> QueueState:
    """The pool state the plan was made from (``details.state`` and ``current_workers``)."""
    state = plan.details.get("state", {})
    return QueueState(
        current_workers=int(plan.current_workers or 0),
        current_backlog=float(state.get("current_backlog", 0.0)),
        mean_service_s=float(state.get("mean_service_s", 1.0)),
        service_scv=float(state.get("service_scv", 1.0)),
    )


def scenario_from_stored_plan(
    plan: StoredPlan,
    policy: ScalingPolicy,
    points: Sequence[ForecastPoint],
    *,
    n_paths: int,
    rng: np.random.Generator,
) -> SimScenario:
    """The simulation scenario of a stored plan.

    Raises:
        ValueError: the plan has no stored forecast (e.g. it was skipped).
    """
    if not points:
        raise ValueError(
            f"plan {plan.id} has no stored forecast to simulate (status {plan.status})"
        )
    mean = np.array([p.predicted_rate for p in points])
    sigma = np.array([(p.confidence_upper - p.confidence_lower) / (2 * Z80) for p in points])
    paths = np.maximum(mean + sigma * rng.standard_normal((n_paths, len(points))), 0.0)
    window_s = (
        (points[1].forecast_time - points[0].forecast_time).total_seconds()
        if len(points) > 1
        else policy.forecast.interval_minutes * 60.0
    )
    return plan_scenario(
        policy,
        stored_pool_state(plan),
        [(s.execute_at, s.to_workers) for s in plan.steps],
        start=points[0].forecast_time,
        window_s=window_s,
        demand_paths=paths,
    )


def resimulate_plan(
    store: PlanRepository, plan_id: int, *, replications: int, seed: int, engine: str = "auto"
) -> dict[str, Any]:
    """Simulate a stored plan again (its forecast, steps and pool); a JSON-able summary.

    Raises:
        StoreError: no such plan or policy. ValueError: the plan has no stored forecast.
        KeyError: the plan names no policy.
    """
    plan = store.get_plan(plan_id)
    policy = store.policy_for_plan(plan)
    scenario = scenario_from_stored_plan(
        plan,
        policy,
        store.forecast_points(plan_id),
        n_paths=min(replications, MAX_DEMAND_PATHS),
        rng=np.random.default_rng(seed),
    )
    s = simulate(
        scenario,
        replications=replications,
        seed=seed,
        engine=engine,
        job_budget=INTERACTIVE_JOB_BUDGET,
    )
    return {
        "plan": plan_id,
        "queue": plan.queue,
        "slo_achievement_rate": s.slo_achievement_rate,
        "achievement_ci95": list(s.achievement_ci95),
        "p95_wait_s": s.p95_wait_s,
        "mean_wait_s": s.mean_wait_s,
        "max_backlog": s.max_backlog,
        "utilization_range": list(s.utilization_range),
        "jobs": s.jobs,
        "engine": s.engine,
        "engine_label": engine_label(s.engine),
        "approximate": s.approximate,
        "replications": s.replications,
    }
