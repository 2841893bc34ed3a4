"""Re-simulate a stored plan (``capplan simulate --plan ID``) from what the store kept.

Demand paths come from the stored forecast: its mean and 80 % band, read as a normal
distribution per window (sigma = band width / (2 * 1.2816)), truncated at zero. The pool
state (workers, backlog, service time and SCV) and the steps are the plan's own.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from capplan_core.policy import ScalingPolicy
from capplan_core.simulation import SimScenario
from capplan_core.store.models import CapacityPlanRow, ForecastPointRow

Z80 = 1.2815515655446004  # standard normal quantile at 0.9


def scenario_from_stored_plan(
    plan: CapacityPlanRow, policy: ScalingPolicy, points: Sequence[ForecastPointRow],
    *, n_paths: int, rng: np.random.Generator,
) -> SimScenario:
    """The simulation scenario of a stored plan.

    Raises:
        ValueError: the plan has no stored forecast (e.g. it was skipped).
    """
    if not points:
        raise ValueError(f"plan {plan.id} has no stored forecast to simulate "
                         f"(status {plan.status})")
    mean = np.array([p.predicted_rate for p in points])
    sigma = np.array([(p.confidence_upper - p.confidence_lower) / (2 * Z80) for p in points])
    paths = np.maximum(mean + sigma * rng.standard_normal((n_paths, len(points))), 0.0)
    window_s = (points[1].forecast_time - points[0].forecast_time).total_seconds() \
        if len(points) > 1 else policy.forecast.interval_minutes * 60.0
    start = points[0].forecast_time
    state = plan.details.get("state", {})
    scv = float(state.get("service_scv", 1.0))
    return SimScenario(
        horizon_s=window_s * len(points), window_s=window_s, rates_per_s=paths,
        initial_workers=int(plan.current_workers or 0),
        steps=[(max(0.0, (s.execute_at - start).total_seconds()), int(s.to_workers))
               for s in plan.steps],
        mean_service_s=float(state.get("mean_service_s", 1.0)), service_scv=scv,
        service_kind="exponential" if abs(scv - 1.0) < 0.05 else "lognormal",
        startup_s=policy.scaling.startup_seconds, mtbf_s=policy.simulation.mtbf_seconds,
        restart_s=policy.simulation.restart_seconds,
        quota_workers=policy.simulation.quota_workers,
        initial_backlog=int(round(float(state.get("current_backlog", 0.0)))),
        slo_wait_s=policy.slo.wait_seconds, slo_wait_quantile=policy.slo.wait_quantile,
        slo_max_backlog=policy.slo.max_backlog,
    )
