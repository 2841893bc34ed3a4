"""The hybrid strategy: a planned floor ahead of demand, a reactive autoscaler above it.

This is how predictive scaling is combined with dynamic scaling in the clouds, and what a KEDA
``ScaledObject`` does when capplan moves its ``minReplicaCount``: the replica count is
``max(floor, reactive recommendation)``.

- **Floor.** At every planning cycle capplan plans with ``plan_capacity`` from the same
  forecast as the predictive strategy, sized to ``floor_quantile`` of the demand, starting
  from the floor it set last (not from the replicas the reactive part added). The floor moves
  when that plan's steps fall due, so scale-ups land ``startup_seconds`` ahead of the window.
- **Reactive part** (the KEDA/HPA rule of :class:`~capplan_core.backtest.strategies.
  ReactiveController`: poll, tolerance, scale-down stabilisation and cooldown). Its rate
  trigger's target per replica is the most demand the floor can carry within the SLO,
  divided by the floor (a ``targetValue`` capplan writes with the floor; ``μ ×
  target_utilization`` before the first plan): while the floor can carry the measured
  demand it wants no more than the floor, and on a surprise it scales the pool in
  proportion to it. Its backlog trigger is the reactive strategy's (jobs one worker clears
  within the SLO wait).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, replace

import pandas as pd

from capplan_core.backtest.predictive import (
    CycleClock,
    CycleForecaster,
    PlanRecord,
    due_level,
    plan_from_forecast,
)
from capplan_core.backtest.replay import Observation
from capplan_core.backtest.strategies import ReactiveSpec, clamp_workers
from capplan_core.planning.window_sizing import (
    sizing_quantile,
    slo_terms_from_policy,
)
from capplan_core.policy import ScalingPolicy
from capplan_core.queueing.sizing import capacity_at_slo


@dataclass(frozen=True)
class HybridSpec:
    """The hybrid strategy's knobs; ``floor_quantile`` None = the policy's sizing quantile."""

    floor_quantile: float | None = None
    reactive: ReactiveSpec = field(default_factory=ReactiveSpec)


@dataclass
class HybridController:
    policy: ScalingPolicy
    forecaster: CycleForecaster
    start: pd.Timestamp
    cadence_s: float
    start_workers: int
    spec: HybridSpec = field(default_factory=HybridSpec)
    name: str = "hybrid"
    plans: list[PlanRecord] = field(default_factory=list)
    floor_changes: int = 0

    def __post_init__(self) -> None:
        self._clock = CycleClock(self.start, self.cadence_s)
        self._floor = self.initial_workers()
        self._floor_changed_at: pd.Timestamp | None = None
        self._per_replica: float | None = None  # the rate trigger's target (jobs/s)
        self._above = 0  # the reactive part's recommendation
        self._last_poll: pd.Timestamp | None = None
        self._last_down: pd.Timestamp | None = None
        self._recs: deque[tuple[pd.Timestamp, int]] = deque()
        self._terms = slo_terms_from_policy(self.policy, 0.0)
        self._service = (1.0, 1.0)
        self._capacity: dict[tuple[int, float, float], float] = {}

    @property
    def startup_s(self) -> float:
        return self.policy.scaling.startup_seconds

    def initial_workers(self) -> int:
        return clamp_workers(self.start_workers, self.policy)

    @property
    def floor_quantile(self) -> float:
        q = self.spec.floor_quantile
        return sizing_quantile(self.policy) if q is None else q

    def _replan(self, obs: Observation) -> None:
        cf = self.forecaster.at(obs.t)
        if cf is None:
            return
        floor_obs = replace(obs, commanded=self._floor, last_action_at=self._floor_changed_at)
        self.plans.append(plan_from_forecast(self.policy, cf, floor_obs, self.floor_quantile))
        self._service = (cf.mean_service_s, cf.service_scv)
        self._per_replica = self._target_per_replica()

    def _target_per_replica(self) -> float | None:
        if self._floor <= 0 or not self.plans:
            return None
        key = (self._floor, *self._service)
        if key not in self._capacity:
            self._capacity[key] = (
                capacity_at_slo(self._floor, self._service[0], self._terms, self._service[1])
                / self._floor
            )
        return self._capacity[key] or None

    def _move_floor(self, t: pd.Timestamp) -> None:
        level = due_level(self.plans[-1] if self.plans else None, t)
        if level is not None and level != self._floor:
            self._floor, self._floor_changed_at = level, t
            self.floor_changes += 1
            self._per_replica = self._target_per_replica()

    def desired_above(self, obs: Observation) -> int:
        """The reactive part's replicas: max of its rate and backlog triggers."""
        sp = self.spec.reactive
        mu = obs.service_rate_per_s
        target = self._per_replica if self._per_replica is not None else mu * sp.target_utilization
        by_rate = obs.arrival_rate_per_s / target if target > 0 else 0.0
        b_per = sp.backlog_per_replica or max(1.0, mu * (self.policy.slo.wait_seconds or 60.0))
        return math.ceil(max(by_rate, obs.backlog / b_per) - 1e-9)

    def _react(self, obs: Observation) -> None:
        sp = self.spec.reactive
        if (
            self._last_poll is not None
            and (obs.t - self._last_poll).total_seconds() < sp.poll_s - 1e-9
        ):
            return
        self._last_poll = obs.t
        cur = obs.commanded
        want = self.desired_above(obs)
        if cur > 0 and abs(want / cur - 1.0) <= sp.tolerance:
            want = min(cur, max(want, self._above))  # inside the tolerance: hold
        self._recs.append((obs.t, want))
        horizon = obs.t - pd.Timedelta(seconds=sp.scale_down_stabilization_s)
        while self._recs and self._recs[0][0] < horizon:
            self._recs.popleft()
        if want > self._above:
            self._above = want
            return
        stable = max(r for _, r in self._recs)
        cooled = (
            self._last_down is None or (obs.t - self._last_down).total_seconds() >= sp.cooldown_s
        )
        if stable < self._above and cooled:
            self._above, self._last_down = stable, obs.t

    def command(self, obs: Observation) -> int | None:
        if self._clock.due(obs.t):
            self._replan(obs)
        self._move_floor(obs.t)
        self._react(obs)
        target = clamp_workers(max(self._floor, self._above), self.policy)
        return target if target != obs.commanded else None
