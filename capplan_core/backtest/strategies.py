"""The baselines capplan is measured against: static peak, a reactive autoscaler, the oracle.

- ``oracle``: per window, the least workers meeting the SLO for the demand that actually came
  (``required_workers`` at the window's real λ, μ and service SCV), ready the instant the
  window starts — no startup delay, no motion limits: a lower bound on what any strategy needs.
- ``static_peak``: one constant count, the oracle's largest — provisioning for the period's
  peak, known in hindsight.
- ``reactive``: what a KEDA / HPA autoscaler does. Every ``poll_s`` it reads the arrival rate
  (measured over the last minute) and the backlog, and wants
  ceil(max(λ / (μ·target_utilization), backlog / backlog_per_replica)) replicas (KEDA takes the
  largest trigger); inside the HPA tolerance (±10 %) it holds; a scale-down takes the highest
  recommendation of the last ``scale_down_stabilization_s`` (HPA's stabilisation window) and
  waits ``cooldown_s`` after the previous scale-down; scale-ups are immediate. The policy's
  min/max workers and startup delay apply.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from capplan_core.backtest.demand import DemandTrace
from capplan_core.backtest.replay import Observation
from capplan_core.planning.window_sizing import slo_terms_from_policy
from capplan_core.policy import ScalingPolicy
from capplan_core.queueing.sizing import required_workers


def clamp_workers(n: int, policy: ScalingPolicy) -> int:
    sc = policy.scaling
    return int(min(max(n, sc.min_workers), sc.max_workers))


def oracle_workers(trace: DemandTrace, policy: ScalingPolicy) -> np.ndarray:
    """Least workers per window meeting the SLO at the actual demand, within min/max."""
    terms = slo_terms_from_policy(policy, 0.0)
    out = []
    for lam, mu, scv in zip(
        trace.arrival_rate_per_s, trace.service_rate_per_s, trace.service_scv, strict=True
    ):
        r = required_workers(
            float(lam),
            1.0 / float(mu),
            terms,
            service_scv=float(scv),
            max_workers=policy.scaling.max_workers,
        )
        out.append(clamp_workers(r.workers, policy))
    return np.asarray(out, dtype=int)


@dataclass
class ScheduleController:
    """Commands a fixed per-window count at each window start (oracle, static peak)."""

    name: str
    per_window: np.ndarray
    window_s: float
    start: pd.Timestamp

    @property
    def startup_s(self) -> float:
        return 0.0  # hindsight baselines: their workers are ready when commanded

    def initial_workers(self) -> int:
        return int(self.per_window[0])

    def command(self, obs: Observation) -> int | None:
        i = int((obs.t - self.start).total_seconds() // self.window_s)
        return int(self.per_window[min(i, len(self.per_window) - 1)])


@dataclass(frozen=True)
class ReactiveSpec:
    """A KEDA/HPA-style autoscaler's settings (defaults: Kubernetes' and KEDA's own)."""

    poll_s: float = 30.0  # KEDA pollingInterval
    target_utilization: float = 0.75  # arrival rate per replica = μ × this
    backlog_per_replica: float | None = None  # None: jobs one worker clears in the SLO wait
    tolerance: float = 0.1  # HPA --horizontal-pod-autoscaler-tolerance
    scale_down_stabilization_s: float = 300.0  # HPA behavior.scaleDown default
    cooldown_s: float = 300.0  # min time between scale-downs


@dataclass
class ReactiveController:
    policy: ScalingPolicy
    spec: ReactiveSpec
    start_workers: int
    name: str = "reactive"
    _last_poll: pd.Timestamp | None = None
    _last_down: pd.Timestamp | None = None
    _recs: deque[tuple[pd.Timestamp, int]] = field(default_factory=deque)

    @property
    def startup_s(self) -> float:
        return self.policy.scaling.startup_seconds

    def initial_workers(self) -> int:
        return clamp_workers(self.start_workers, self.policy)

    def desired(self, obs: Observation) -> int:
        sp = self.spec
        per_replica = obs.service_rate_per_s * sp.target_utilization
        by_rate = obs.arrival_rate_per_s / per_replica if per_replica > 0 else 0.0
        b_per = sp.backlog_per_replica or max(
            1.0, obs.service_rate_per_s * (self.policy.slo.wait_seconds or 60.0)
        )
        return math.ceil(max(by_rate, obs.backlog / b_per) - 1e-9)

    def command(self, obs: Observation) -> int | None:
        sp = self.spec
        if (
            self._last_poll is not None
            and (obs.t - self._last_poll).total_seconds() < sp.poll_s - 1e-9
        ):
            return None
        self._last_poll = obs.t
        cur = obs.commanded
        want = clamp_workers(self.desired(obs), self.policy)
        if cur > 0 and abs(want / cur - 1.0) <= sp.tolerance:
            want = cur
        self._recs.append((obs.t, want))
        horizon = obs.t - pd.Timedelta(seconds=sp.scale_down_stabilization_s)
        while self._recs and self._recs[0][0] < horizon:
            self._recs.popleft()
        if want >= cur:
            return want if want > cur else None
        want = min(cur, max(r for _, r in self._recs))
        if want >= cur or (
            self._last_down is not None
            and (obs.t - self._last_down).total_seconds() < sp.cooldown_s
        ):
            return None
        self._last_down = obs.t
        return want
