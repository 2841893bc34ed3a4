"""capplan's own strategy in the backtest: forecast + planner at every planning cycle.

At each cycle (every ``cadence_s`` from the replay start, 30 min by default — the service's
re-planning cadence) the controller cleans the metric rows strictly before that moment,
forecasts with the policy's forecast spec and plans with ``plan_capacity`` (or, with
``prove_engine``, the whole decide loop ``plan_and_prove``) from the pool it actually has in
the replay (replicas commanded, fluid backlog, last action for the cooldown
and dwell). Until the next cycle it executes that plan's steps when they fall due. Rows at or
after the planning moment are never passed on — the no look-ahead guarantee, tested by
poisoning future rows.

Cost control: automatic model selection (a rolling-origin evaluation of all candidates) runs
at the first cycle and again every ``reselect_s`` (default a day), or as soon as the opening
hours learned from the history change (a first whole week of history shows the weekend
closed); cycles in between forecast with the chosen model only. The service chooses at every
cycle. One :class:`CycleForecaster` serves every forecast-driven strategy
of a run (predictive and hybrid plan from the same forecast at the same moment). By default
the Monte Carlo ``decide`` loop is not replayed (it only adds workers where a simulated plan
fails, so the backtest scores the planner's sizing alone); ``prove_engine`` replays it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from capplan_core.backtest.replay import Observation
from capplan_core.backtest.strategies import clamp_workers
from capplan_core.forecast import ForecastResult, NoHistoryError, forecast_queue
from capplan_core.planning.decide import plan_and_prove
from capplan_core.planning.planner import PlanInput, plan_capacity
from capplan_core.planning.pool_state import QueueState
from capplan_core.planning.pooled_sizing import (
    DemandDistribution,
    distribution_for,
    distribution_from_forecast,
)
from capplan_core.planning.window_sizing import sizing_quantile
from capplan_core.policy import ScalingPolicy
from capplan_core.quality.clean import CleanResult, clean_queue, latest_state

DEFAULT_RESELECT_S = 86_400.0


@dataclass(frozen=True)
class CycleForecast:
    """One cycle's forecast and the service statistics seen before it."""

    at: pd.Timestamp
    forecast: ForecastResult
    mean_service_s: float
    service_scv: float


@dataclass
class CycleForecaster:
    """Forecasts at planning moments from the rows strictly before them (cached per moment)."""

    policy: ScalingPolicy
    rows: pd.DataFrame  # raw metric rows of the queue (the whole history)
    reselect_s: float = DEFAULT_RESELECT_S
    _chosen: str | None = None
    _chosen_at: pd.Timestamp | None = None
    _cache: dict[pd.Timestamp, CycleForecast | None] = field(default_factory=dict)
    _calendar: tuple[str, ...] = ()  # the opening hours the chosen model was chosen under

    def __post_init__(self) -> None:
        ts = pd.to_datetime(self.rows["timestamp"], utc=True)
        order = np.argsort(ts.to_numpy(), kind="stable")
        self.rows = self.rows.iloc[order].reset_index(drop=True)
        self._ts = ts.iloc[order].reset_index(drop=True)

    def history_before(self, t: pd.Timestamp) -> pd.DataFrame:
        """Rows strictly before ``t`` — all the planner may see at ``t``."""
        n = int(self._ts.searchsorted(t, side="left"))
        return self.rows.iloc[:n]

    def _model_for(self, t: pd.Timestamp) -> str:
        spec = self.policy.forecast
        if spec.model != "auto":
            return spec.model
        stale = self._chosen_at is None or (t - self._chosen_at).total_seconds() >= self.reselect_s
        return "auto" if stale or self._chosen is None else self._chosen

    def at(self, t: pd.Timestamp) -> CycleForecast | None:
        """The forecast made at ``t``; None when there is no usable history."""
        if t not in self._cache:  # strategies replay one after another: keep them all
            self._cache[t] = self._forecast(t)
        return self._cache[t]

    def _forecast(self, t: pd.Timestamp) -> CycleForecast | None:
        pol = self.policy
        interval_s = pol.forecast.interval_minutes * 60.0
        clean = clean_queue(
            self.history_before(t),
            queue=pol.queue,
            interval_s=interval_s,
            now=t.to_pydatetime(),
            exclude_before=pol.exclude_before,
        )
        if clean.empty:
            return None
        state = latest_state(clean)
        model = self._model_for(t)
        cf = self._run(t, clean, state, model)
        if cf is not None and model != "auto" and _calendar(cf.forecast) != self._calendar:
            # the opening hours learned from the history changed (a first whole week shows
            # the weekend closed): the kept model was chosen for another series, choose again
            # (the service chooses at every cycle; the replay only between such changes)
            cf = self._run(t, clean, state, "auto")
        return cf

    def _run(
        self, t: pd.Timestamp, clean: CleanResult, state: dict[str, float], model: str
    ) -> CycleForecast | None:
        pol = self.policy
        interval_s = pol.forecast.interval_minutes * 60.0
        try:
            fc = forecast_queue(
                clean.series["arrival_rate"],
                pol.forecast.model_copy(update={"model": model}),
                queue=pol.queue,
                exclude=clean.series["outlier"].astype(bool),
                start=t.floor(pd.Timedelta(seconds=interval_s)),
            )
        except NoHistoryError:
            return None
        if model == "auto":
            self._chosen, self._chosen_at, self._calendar = fc.model, t, _calendar(fc)
        return CycleForecast(t, fc, state["mean_service_s"], state["service_scv"])


def _calendar(fc: ForecastResult) -> tuple[str, ...]:
    """The forecast's opening-hours notes: which calendar and open-time series it used."""
    return tuple(n for n in fc.notes if n.startswith("opening hours"))


@dataclass
class PlanRecord:
    """One cycle's plan: when it was made and its steps (execute_at, to_workers); with the
    forecast's demand distribution per window, to read each window's P(met) afterwards."""

    at: pd.Timestamp
    model: str
    steps: list[tuple[datetime, int]]
    starts: pd.DatetimeIndex | None = None
    distribution: DemandDistribution | None = None
    mean_service_s: float = 1.0
    service_scv: float = 1.0


def plan_from_forecast(
    policy: ScalingPolicy,
    cf: CycleForecast,
    obs: Observation,
    demand_quantile: float,
    prove_engine: str | None = None,
) -> PlanRecord:
    """``plan_capacity`` at ``obs`` from the pool the replay has, sized to ``demand_quantile``.

    With ``prove_engine`` the production decide loop runs instead (``plan_and_prove``: plan,
    Monte Carlo on that engine, add workers where it fails, re-plan), as the service does.
    """
    fc = cf.forecast
    last = None if obs.last_action_at is None else obs.last_action_at.to_pydatetime()
    if prove_engine is not None:
        state = QueueState(
            current_workers=obs.commanded,
            current_backlog=obs.backlog,
            mean_service_s=cf.mean_service_s,
            service_scv=cf.service_scv,
        )
        decision = plan_and_prove(
            policy, fc, state, now=obs.t.to_pydatetime(), last_scale_at=last, engine=prove_engine
        )
        return PlanRecord(
            obs.t,
            fc.model,
            [(s.execute_at, int(s.to_workers)) for s in decision.proposal.steps],
            fc.timestamps,
            distribution_from_forecast(fc),
            cf.mean_service_s,
            cf.service_scv,
        )
    proposal = plan_capacity(
        PlanInput(
            policy=policy,
            now=obs.t.to_pydatetime(),
            current_workers=obs.commanded,
            current_backlog=obs.backlog,
            mean_service_s=cf.mean_service_s,
            service_scv=cf.service_scv,
            window_starts=[s.to_pydatetime() for s in fc.timestamps],
            window_s=fc.interval_s,
            demand_per_s=fc.quantile(demand_quantile),
            demand_quantile=demand_quantile,
            demand_distribution=distribution_for(policy, fc),
            last_scale_at=last,
        )
    )
    return PlanRecord(
        obs.t,
        fc.model,
        [(s.execute_at, int(s.to_workers)) for s in proposal.steps],
        fc.timestamps,
        distribution_from_forecast(fc),
        cf.mean_service_s,
        cf.service_scv,
    )


@dataclass
class CycleClock:
    """Says when a planning cycle is due: at ``start`` and every ``cadence_s`` after it."""

    start: pd.Timestamp
    cadence_s: float
    _next: pd.Timestamp | None = None

    def due(self, t: pd.Timestamp) -> bool:
        if self._next is not None and t < self._next:
            return False
        step = pd.Timedelta(seconds=self.cadence_s)
        self._next = (self._next or self.start) + step
        while self._next <= t:  # a cadence finer than the tick
            self._next += step
        return True


def due_level(plan: PlanRecord | None, t: pd.Timestamp) -> int | None:
    """The replica count the plan's steps have reached at ``t`` (None before its first step)."""
    if plan is None:
        return None
    due = [w for at, w in plan.steps if at <= t.to_pydatetime()]
    return due[-1] if due else None


@dataclass
class PredictiveController:
    policy: ScalingPolicy
    forecaster: CycleForecaster
    start: pd.Timestamp
    cadence_s: float
    start_workers: int
    name: str = "predictive"
    plans: list[PlanRecord] = field(default_factory=list)
    prove_engine: str | None = None  # replay the decide loop (Monte Carlo) on this engine

    def __post_init__(self) -> None:
        self._clock = CycleClock(self.start, self.cadence_s)

    @property
    def startup_s(self) -> float:
        return self.policy.scaling.startup_seconds

    def initial_workers(self) -> int:
        return clamp_workers(self.start_workers, self.policy)

    def plan_at(self, obs: Observation) -> PlanRecord | None:
        """Forecast and plan with the data before ``obs.t``; None when there is none."""
        cf = self.forecaster.at(obs.t)
        if cf is None:
            return None
        return plan_from_forecast(
            self.policy, cf, obs, sizing_quantile(self.policy), self.prove_engine
        )

    def command(self, obs: Observation) -> int | None:
        if self._clock.due(obs.t):
            rec = self.plan_at(obs)
            if rec is not None:
                self.plans.append(rec)
        return due_level(self.plans[-1] if self.plans else None, obs.t)
