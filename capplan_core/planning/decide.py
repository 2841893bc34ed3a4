"""Decide: plan, prove the plan by Monte Carlo simulation, and add capacity where it fails.

confidence = share of replications meeting the SLO in every window over the horizon
(the simulation's ``slo_achievement_rate``). Below the policy's threshold, workers are added in
the windows that failed most and the plan is re-simulated, up to ``scaling.max_replans`` times;
if the threshold is still not reached, the plan is kept with ``slo_achievable = false``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from capplan_core.forecast import ForecastResult
from capplan_core.planning.planner import PlanInput, PlanProposal, plan_capacity
from capplan_core.planning.state import QueueState
from capplan_core.policy import ScalingPolicy
from capplan_core.simulation import SimScenario, SimulationSummary, simulate

FAILING_WINDOW_SHARE = 0.02  # a window failing in more than this share of replications gets help
# simulate(scenario, *, replications, seed, engine); the flow passes a fanned-out version
SimulateFn = Callable[..., SimulationSummary]


@dataclass(frozen=True)
class Decision:
    proposal: PlanProposal
    simulation: SimulationSummary
    confidence: float
    slo_achievable: bool
    attempts: int
    reasons: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)


def scenario_for(
    policy: ScalingPolicy, proposal: PlanProposal, forecast: ForecastResult, state: QueueState,
    now: datetime, demand_paths: np.ndarray,
) -> SimScenario:
    """The simulation scenario of a proposal: its steps, the demand paths, the pool's state."""
    start = forecast.timestamps[0].to_pydatetime()
    horizon_s = forecast.interval_s * len(forecast.timestamps)
    steps = [
        (max(0.0, (st.execute_at - start).total_seconds()), int(st.to_workers))
        for st in proposal.steps
    ]
    sim = policy.simulation
    return SimScenario(
        horizon_s=horizon_s,
        window_s=forecast.interval_s,
        rates_per_s=demand_paths,
        initial_workers=int(state.current_workers),
        steps=steps,
        mean_service_s=state.mean_service_s,
        service_scv=state.service_scv,
        service_kind="exponential" if abs(state.service_scv - 1.0) < 0.05 else "lognormal",
        startup_s=policy.scaling.startup_seconds,
        mtbf_s=sim.mtbf_seconds,
        restart_s=sim.restart_seconds,
        quota_workers=sim.quota_workers,
        initial_backlog=int(round(state.current_backlog)),
        slo_wait_s=policy.slo.wait_seconds,
        slo_wait_quantile=policy.slo.wait_quantile,
        slo_max_backlog=policy.slo.max_backlog,
    )


def decide(
    policy: ScalingPolicy,
    forecast: ForecastResult,
    state: QueueState,
    *,
    now: datetime,
    last_scale_at: datetime | None = None,
    data_quality_warning: bool = False,
    engine: str = "auto",
    simulate_fn: SimulateFn = simulate,
) -> Decision:
    """Plan to the SLO, simulate, and re-plan with more capacity where the simulation failed."""
    sim = policy.simulation
    rng = np.random.default_rng(np.random.SeedSequence(sim.seed))
    n_paths = min(sim.replications, 200)
    demand_paths = forecast.simulate(n_paths, rng)
    demand = forecast.quantile(policy.forecast.demand_quantile)
    n = len(forecast.timestamps)
    extra = np.zeros(n, dtype=int)
    history: list[dict[str, Any]] = []
    threshold = policy.scaling.confidence_threshold
    proposal: PlanProposal | None = None
    summary: SimulationSummary | None = None
    attempts = 0
    for attempt in range(policy.scaling.max_replans + 1):
        attempts = attempt + 1
        proposal = plan_capacity(PlanInput(
            policy=policy, now=now, current_workers=state.current_workers,
            current_backlog=state.current_backlog, mean_service_s=state.mean_service_s,
            service_scv=state.service_scv,
            window_starts=[t.to_pydatetime() for t in forecast.timestamps],
            window_s=forecast.interval_s, demand_per_s=demand, extra_workers=extra.copy(),
            last_scale_at=last_scale_at, anomaly=forecast.recent_anomaly,
            data_quality_warning=data_quality_warning,
        ))
        scenario = scenario_for(policy, proposal, forecast, state, now, demand_paths)
        summary = simulate_fn(scenario, replications=sim.replications, seed=sim.seed + attempt,
                              engine=engine)
        history.append({"attempt": attempts, "target_workers": proposal.target_workers,
                        "confidence": summary.slo_achievement_rate,
                        "extra_workers": extra.tolist()})
        if summary.slo_achievement_rate >= threshold:
            break
        failing = np.asarray(summary.window_failure_rate) > FAILING_WINDOW_SHARE
        if not failing.any():
            failing = np.ones(n, dtype=bool)
        # one more worker per failing window, or ~10% more where the pool is large
        bump = np.maximum(1, np.ceil(0.1 * np.asarray([w for _, w in proposal.schedule])))
        new_extra = extra + np.where(failing, bump.astype(int), 0)
        if np.array_equal(new_extra, extra):
            break
        extra = new_extra
    if proposal is None or summary is None:  # pragma: no cover - loop runs at least once
        raise RuntimeError("decide ran no attempt")
    confidence = float(summary.slo_achievement_rate)
    reasons = list(proposal.reasons)
    achievable = proposal.slo_achievable and confidence >= threshold
    if confidence < threshold:
        reasons.append(
            f"simulated confidence {confidence:.2f} < threshold {threshold:.2f} after "
            f"{attempts} attempt(s)"
        )
    return Decision(proposal=proposal, simulation=summary, confidence=confidence,
                    slo_achievable=achievable, attempts=attempts, reasons=reasons,
                    history=history)
