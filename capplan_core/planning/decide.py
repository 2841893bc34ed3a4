"""Plan, prove the plan by Monte Carlo simulation, and decide: keep it, or add capacity where it
fails and plan again.

confidence = share of replications meeting the SLO in every window over the horizon
(the simulation's ``slo_achievement_rate``). Below the policy's threshold, workers are added in
the windows that failed most and the plan is re-simulated, up to ``scaling.max_replans`` times;
if the threshold is still not reached, the plan is kept with ``slo_achievable = false``.

The stages are separate functions so the pipeline can run each as its own step:
:func:`propose` (plan), :func:`simulate_proposal` (simulate), :func:`decide` (decide);
:func:`plan_and_prove` runs the whole loop in one call (what-if, tests).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from capplan_core.forecast import ForecastResult
from capplan_core.planning.plan_scenario import MAX_DEMAND_PATHS, plan_scenario
from capplan_core.planning.planner import PlanInput, PlanProposal, plan_capacity
from capplan_core.planning.pool_state import QueueState
from capplan_core.planning.pooled_sizing import distribution_for
from capplan_core.planning.window_sizing import sizing_quantile
from capplan_core.policy import ScalingPolicy
from capplan_core.simulation import SimulationSummary, simulate

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


@dataclass(frozen=True)
class Attempt:
    """One pass of plan → simulate: its number (from 1) and the workers added per window."""

    number: int
    extra_workers: tuple[int, ...]
    history: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Judgement:
    """What :func:`decide` concluded: the decision so far and, if not final, the next attempt."""

    decision: Decision
    next_attempt: Attempt | None

    @property
    def final(self) -> bool:
        return self.next_attempt is None


def first_attempt(forecast: ForecastResult) -> Attempt:
    """Attempt 1: nothing added to what the queueing model asks for."""
    return Attempt(1, (0,) * len(forecast.timestamps))


def demand_paths(policy: ScalingPolicy, forecast: ForecastResult) -> np.ndarray:
    """The demand paths every attempt is simulated on (same seed, same paths)."""
    sim = policy.simulation
    rng = np.random.default_rng(np.random.SeedSequence(sim.seed))
    return forecast.simulate(min(sim.replications, MAX_DEMAND_PATHS), rng)


def propose(
    policy: ScalingPolicy,
    forecast: ForecastResult,
    state: QueueState,
    attempt: Attempt,
    *,
    now: datetime,
    last_scale_at: datetime | None = None,
    data_quality_warning: bool = False,
) -> PlanProposal:
    """Plan to the SLO at the policy's sizing quantile (``slo.target_attainment`` when set,
    then with no safety margin on top; else ``forecast.demand_quantile``), plus the attempt's
    extra workers."""
    quantile = sizing_quantile(policy)
    return plan_capacity(
        PlanInput(
            policy=policy,
            now=now,
            current_workers=state.current_workers,
            current_backlog=state.current_backlog,
            mean_service_s=state.mean_service_s,
            service_scv=state.service_scv,
            window_starts=[t.to_pydatetime() for t in forecast.timestamps],
            window_s=forecast.interval_s,
            demand_per_s=forecast.quantile(quantile),
            demand_quantile=quantile,
            demand_distribution=distribution_for(policy, forecast),
            extra_workers=np.asarray(attempt.extra_workers, dtype=int),
            last_scale_at=last_scale_at,
            anomaly=forecast.recent_anomaly,
            anomaly_note=forecast.anomaly_note,
            data_quality_warning=data_quality_warning,
        )
    )


def simulate_proposal(
    policy: ScalingPolicy,
    forecast: ForecastResult,
    state: QueueState,
    proposal: PlanProposal,
    attempt: Attempt,
    *,
    engine: str = "auto",
    simulate_fn: SimulateFn = simulate,
    paths: np.ndarray | None = None,
) -> SimulationSummary:
    """Monte Carlo of the proposal over the forecast's demand paths (seed + attempt - 1),
    judged from the plan's now: the past minutes of its first window are warm-up."""
    sim = policy.simulation
    scenario = plan_scenario(
        policy,
        state,
        [(st.execute_at, st.to_workers) for st in proposal.steps],
        start=forecast.timestamps[0].to_pydatetime(),
        window_s=forecast.interval_s,
        demand_paths=demand_paths(policy, forecast) if paths is None else paths,
        judged_from=proposal.as_of,
    )
    return simulate_fn(
        scenario, replications=sim.replications, seed=sim.seed + attempt.number - 1, engine=engine
    )


def decide(
    policy: ScalingPolicy,
    attempt: Attempt,
    proposal: PlanProposal,
    simulation: SimulationSummary,
) -> Judgement:
    """Keep the plan (confident enough, or out of attempts) or add workers where it failed.

    A window failing in more than ``FAILING_WINDOW_SHARE`` of replications gets one more worker
    (or ~10 % more where the pool is large); if none failed that much, every window does.
    """
    threshold = policy.scaling.confidence_threshold
    confidence = float(simulation.slo_achievement_rate)
    history = (
        *attempt.history,
        {
            "attempt": attempt.number,
            "target_workers": proposal.target_workers,
            "confidence": simulation.slo_achievement_rate,
            "extra_workers": list(attempt.extra_workers),
        },
    )
    next_attempt: Attempt | None = None
    if confidence < threshold and attempt.number <= policy.scaling.max_replans:
        # help only windows a worker added now can still reach (ready before they end)
        reachable = _reachable_windows(proposal, policy.scaling.startup_seconds)
        failing = (np.asarray(simulation.window_failure_rate) > FAILING_WINDOW_SHARE) & reachable
        if not failing.any():
            failing = reachable
        bump = np.maximum(1, np.ceil(0.1 * np.asarray([w for _, w in proposal.schedule])))
        extra = np.asarray(attempt.extra_workers, dtype=int)
        new_extra = extra + np.where(failing, bump.astype(int), 0)
        if not np.array_equal(new_extra, extra):
            next_attempt = Attempt(attempt.number + 1, tuple(int(x) for x in new_extra), history)
    reasons = list(proposal.reasons)
    if confidence < threshold:
        reasons.append(
            f"simulated confidence {confidence:.2f} < threshold {threshold:.2f} after "
            f"{attempt.number} attempt(s)"
        )
    decision = Decision(
        proposal=proposal,
        simulation=simulation,
        confidence=confidence,
        slo_achievable=proposal.slo_achievable and confidence >= threshold,
        attempts=attempt.number,
        reasons=reasons,
        history=list(history),
    )
    return Judgement(decision, next_attempt)


def _reachable_windows(proposal: PlanProposal, startup_s: float) -> np.ndarray:
    """Windows that end after the earliest moment a worker added now is ready."""
    starts = [t for t, _ in proposal.schedule]
    if len(starts) < 2:
        return np.ones(len(starts), dtype=bool)
    window = starts[1] - starts[0]
    ready = proposal.as_of + timedelta(seconds=startup_s)
    return np.asarray([t + window > ready for t in starts], dtype=bool)


def plan_and_prove(
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
    """plan → simulate → decide, until the decision is final (at most ``max_replans + 1``)."""
    paths = demand_paths(policy, forecast)
    attempt = first_attempt(forecast)
    while True:
        proposal = propose(
            policy,
            forecast,
            state,
            attempt,
            now=now,
            last_scale_at=last_scale_at,
            data_quality_warning=data_quality_warning,
        )
        simulation = simulate_proposal(
            policy,
            forecast,
            state,
            proposal,
            attempt,
            engine=engine,
            simulate_fn=simulate_fn,
            paths=paths,
        )
        judgement = decide(policy, attempt, proposal, simulation)
        if judgement.next_attempt is None:
            return judgement.decision
        attempt = judgement.next_attempt
