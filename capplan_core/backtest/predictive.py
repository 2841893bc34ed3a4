"""capplan's own strategy in the backtest: forecast + planner at every planning cycle.

At each cycle (every ``cadence_s`` from the replay start) the controller cleans the metric
rows strictly before that moment, forecasts with the policy's forecast spec and plans with
``plan_capacity`` from the pool it actually has in the replay (replicas commanded, fluid
backlog, last action for the cooldown). Until the next cycle it executes that plan's steps
when they fall due. Rows at or after the planning moment are never passed on — the no
look-ahead guarantee, tested by poisoning future rows.

Cost control: automatic model selection (a rolling-origin backtest over all candidates) runs
at the first cycle and again every ``reselect_s`` (default a day); cycles in between forecast
with the chosen model only (still calibrating its intervals on its own backtest errors).
The Monte Carlo ``decide`` loop is not replayed: it only adds workers where a simulated plan
fails, so the backtest scores the planner's sizing alone (a slightly leaner capplan).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from capplan_core.backtest.replay import Observation
from capplan_core.backtest.strategies import clamp_workers
from capplan_core.forecast import NoHistoryError, forecast_queue
from capplan_core.planning.planner import PlanInput, plan_capacity
from capplan_core.policy import ScalingPolicy
from capplan_core.quality.clean import clean_queue, latest_state

DEFAULT_RESELECT_S = 86_400.0


@dataclass
class PlanRecord:
    """One cycle's plan: when it was made and its steps (execute_at, to_workers)."""

    at: pd.Timestamp
    model: str
    steps: list[tuple[datetime, int]]


@dataclass
class PredictiveController:
    policy: ScalingPolicy
    rows: pd.DataFrame                    # raw metric rows of the queue (the whole history)
    start: pd.Timestamp
    cadence_s: float
    start_workers: int
    reselect_s: float = DEFAULT_RESELECT_S
    name: str = "predictive"
    plans: list[PlanRecord] = field(default_factory=list)
    _chosen: str | None = None
    _chosen_at: pd.Timestamp | None = None
    _next_cycle: pd.Timestamp | None = None

    def __post_init__(self) -> None:
        ts = pd.to_datetime(self.rows["timestamp"], utc=True)
        order = np.argsort(ts.to_numpy(), kind="stable")
        self.rows = self.rows.iloc[order].reset_index(drop=True)
        self._ts = ts.iloc[order].reset_index(drop=True)

    @property
    def startup_s(self) -> float:
        return self.policy.scaling.startup_seconds

    def initial_workers(self) -> int:
        return clamp_workers(self.start_workers, self.policy)

    def history_before(self, t: pd.Timestamp) -> pd.DataFrame:
        """Rows strictly before ``t`` — all the planner may see at ``t``."""
        n = int(self._ts.searchsorted(t, side="left"))
        return self.rows.iloc[:n]

    def _model_for(self, t: pd.Timestamp) -> str:
        spec = self.policy.forecast
        if spec.model != "auto":
            return spec.model
        stale = self._chosen_at is None or (t - self._chosen_at).total_seconds() >= \
            self.reselect_s
        return "auto" if stale or self._chosen is None else self._chosen

    def plan_at(self, obs: Observation) -> PlanRecord | None:
        """Forecast and plan with the data before ``obs.t``; None when there is none."""
        t, pol = obs.t, self.policy
        interval_s = pol.forecast.interval_minutes * 60.0
        clean = clean_queue(self.history_before(t), queue=pol.queue, interval_s=interval_s,
                            now=t.to_pydatetime(), exclude_before=pol.exclude_before)
        if clean.empty:
            return None
        state = latest_state(clean)
        model = self._model_for(t)
        spec = pol.forecast.model_copy(update={"model": model})
        try:
            fc = forecast_queue(clean.series["arrival_rate"], spec, queue=pol.queue,
                                exclude=clean.series["outlier"].astype(bool),
                                start=t.floor(pd.Timedelta(seconds=interval_s)))
        except NoHistoryError:
            return None
        if model == "auto":
            self._chosen, self._chosen_at = fc.model, t
        proposal = plan_capacity(PlanInput(
            policy=pol, now=t.to_pydatetime(), current_workers=obs.commanded,
            current_backlog=obs.backlog, mean_service_s=state["mean_service_s"],
            service_scv=state["service_scv"],
            window_starts=[s.to_pydatetime() for s in fc.timestamps], window_s=fc.interval_s,
            demand_per_s=fc.quantile(pol.forecast.demand_quantile),
            last_scale_at=None if obs.last_action_at is None
            else obs.last_action_at.to_pydatetime()))
        return PlanRecord(t, fc.model, [(s.execute_at, int(s.to_workers))
                                        for s in proposal.steps])

    def command(self, obs: Observation) -> int | None:
        if self._next_cycle is None or obs.t >= self._next_cycle:
            self._next_cycle = (self._next_cycle or self.start) + pd.Timedelta(
                seconds=self.cadence_s)
            while self._next_cycle <= obs.t:      # a cadence finer than the tick
                self._next_cycle += pd.Timedelta(seconds=self.cadence_s)
            rec = self.plan_at(obs)
            if rec is not None:
                self.plans.append(rec)
        if not self.plans:
            return None
        due = [w for at, w in self.plans[-1].steps if at <= obs.t.to_pydatetime()]
        return due[-1] if due else None
