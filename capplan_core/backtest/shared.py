"""Backtest a pool shared by several queues, scoring each queue against its own SLO (issue 23).

The replay is the single-queue one (:mod:`.replay`) on the pool's total demand: the arrival
rate is the sum of the queues' rates and the service rate the work-weighted one, so the
fluid backlog counts the pool's work exactly. Every strategy sees what a metrics system
would show for the pool:

- ``predictive``: at every planning cycle each queue is forecast from its own rows strictly
  before that moment (``CycleForecaster`` with the pool's policy as that queue sees it), and
  the pool is sized window by window for every queue's SLO and scheduled with the calm
  scheduler (``planning.shared_plan.shared_steps``, the planner's own code). As for a single
  queue, the Monte Carlo proof is not replayed: the backtest scores the planner's sizing.
- ``reactive``: KEDA with one trigger summing the pool's lists (the arrival rate of all its
  queues, the backlog of all of them), as users run it today (:mod:`.strategies`).
- ``oracle``: per window, the least pool for which every queue meets its SLO at the demand
  that really came (``required_workers_priority``), ready at once; ``static_peak`` its peak.

The hybrid and the rate oracle are single-queue strategies and are not played here.

Scoring, per queue and window: :mod:`.shared_scoring`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from capplan_core.backtest.demand import DemandTrace, demand_trace
from capplan_core.backtest.predictive import CycleClock, CycleForecaster, PlanRecord, due_level
from capplan_core.backtest.replay import DEFAULT_TICK_S, Controller, Observation, Replay, replay
from capplan_core.backtest.run import BacktestError, _period, _progress_of
from capplan_core.backtest.shared_scoring import PoolScore, score_pool
from capplan_core.backtest.strategies import (
    ReactiveController,
    ReactiveSpec,
    ScheduleController,
    clamp_workers,
)
from capplan_core.planning.shared_pipeline import queue_view
from capplan_core.planning.shared_plan import SharedQueue, queue_weights, shared_steps
from capplan_core.planning.window_sizing import SIZING_SEARCH_LIMIT, sizing_quantile, slo_terms
from capplan_core.policy import ScalingPolicy
from capplan_core.queueing.pool_sizing import PoolClass, required_workers_priority

SHARED_STRATEGIES = ("predictive", "reactive", "static_peak", "oracle")


@dataclass
class SharedBacktestResult:
    policy: str
    queue: str
    queues: tuple[str, ...]
    discipline: str
    window_s: float
    cadence_s: float
    tick_s: float
    traces: dict[str, DemandTrace]  # scored windows only, per queue
    strategies: dict[str, PoolScore]
    workers: dict[str, np.ndarray]  # mean commanded replicas per scored window
    plans: int = 0
    runtime_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def starts(self) -> pd.DatetimeIndex:
        return self.traces[self.queue].starts

    def figure(self, path: str | Path) -> Path:
        """Draw each queue's work, each strategy's workers and each queue's misses."""
        from capplan_core.backtest.shared_figure import draw_shared_backtest

        return draw_shared_backtest(self, Path(path))

    def to_dict(self) -> dict[str, Any]:
        """The JSON of a shared pool's backtest (docs/backtest.md, "Shared pools")."""
        oracle_wh = self.strategies["oracle"].worker_hours
        strategies = {
            name: {
                "slo_attainment": s.slo_attainment,
                "windows_missed": s.windows_missed,
                "windows_with_demand": s.windows_with_demand,
                "worker_hours": s.worker_hours,
                "cost": s.cost,
                "scaling_actions": s.scaling_actions,
                "changes_per_window": s.changes_per_window,
                "actions_per_day": s.scaling_actions / s.days if s.days > 0 else 0.0,
                "worker_hours_vs_oracle": s.worker_hours / oracle_wh if oracle_wh else None,
                "queues": {
                    q: {
                        "slo_attainment": qs.slo_attainment,
                        "windows_missed": qs.windows_missed,
                        "windows_with_demand": qs.windows_with_demand,
                    }
                    for q, qs in s.queues.items()
                },
            }
            for name, s in self.strategies.items()
        }
        windows = [
            {
                "start": t.isoformat(),
                "arrival_rate": {
                    q: float(tr.arrival_rate_per_s[i]) for q, tr in self.traces.items()
                },
                "workers": {n: round(float(w[i]), 4) for n, w in self.workers.items()},
                "meets_slo": {
                    n: {q: bool(qs.met[i]) for q, qs in s.queues.items()}
                    for n, s in self.strategies.items()
                },
            }
            for i, t in enumerate(self.starts)
        ]
        return {
            "policy": self.policy,
            "queue": self.queue,
            "shared": {"queues": list(self.queues), "discipline": self.discipline},
            "start": self.starts[0].isoformat(),
            "end": self.traces[self.queue].end.isoformat(),
            "window_s": self.window_s,
            "cadence_s": self.cadence_s,
            "tick_s": self.tick_s,
            "plans": self.plans,
            "runtime_s": round(self.runtime_s, 3),
            "strategies": strategies,
            "windows": windows,
            "notes": list(self.notes),
        }


def pool_trace(traces: Sequence[DemandTrace], pool_queue: str) -> DemandTrace:
    """The pool's total demand: the queues' rates summed, the work-weighted service rate
    (the pool's jobs per second per busy worker), so (λ − cμ)·dt is the pool's work balance."""
    lam = np.sum([t.arrival_rate_per_s for t in traces], axis=0)
    work = np.sum([t.arrival_rate_per_s / t.service_rate_per_s for t in traces], axis=0)
    mean_mu = np.mean([t.service_rate_per_s for t in traces], axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = np.where(work > 0, lam / np.where(work > 0, work, 1.0), mean_mu)
    first = traces[0]
    prior_work = sum(t.prior_arrival_rate_per_s / float(t.service_rate_per_s[0]) for t in traces)
    prior_lam = sum(t.prior_arrival_rate_per_s for t in traces)
    return DemandTrace(
        queue=pool_queue,
        window_s=first.window_s,
        starts=first.starts,
        arrival_rate_per_s=lam,
        service_rate_per_s=mu,
        service_scv=np.ones(len(first)),
        initial_backlog=sum(t.initial_backlog for t in traces),
        initial_workers=max(t.initial_workers for t in traces),  # each counts the pool's
        prior_arrival_rate_per_s=prior_lam if prior_work > 0 else 0.0,
        notes=[n for t in traces for n in (f"{t.queue}: {x}" for x in t.notes)],
    )


def shared_oracle_workers(traces: Sequence[DemandTrace], policy: ScalingPolicy) -> np.ndarray:
    """Per window, the least pool meeting every queue's SLO at the demand that came."""
    assert policy.shared is not None
    weights = queue_weights(policy)
    out = []
    for i in range(len(traces[0])):
        classes = [
            PoolClass(
                t.queue,
                float(t.arrival_rate_per_s[i]),
                slo_terms(policy.slo_of(t.queue), 0.0),
                mean_service_s=1.0 / float(t.service_rate_per_s[i]),
                service_scv=float(t.service_scv[i]),
                weight=weights[t.queue],
            )
            for t in traces
        ]
        sized = required_workers_priority(
            classes,
            classes[0].mean_service_s or 1.0,
            discipline=policy.shared.discipline,
            max_workers=SIZING_SEARCH_LIMIT,
        )
        out.append(clamp_workers(sized.workers, policy))
    return np.asarray(out, dtype=int)


@dataclass
class SharedPredictiveController:
    """capplan's plan for the pool, made at every cycle from each queue's own forecast."""

    policy: ScalingPolicy
    forecasters: dict[str, CycleForecaster]
    start: pd.Timestamp
    cadence_s: float
    start_workers: int
    name: str = "predictive"
    plans: list[PlanRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._clock = CycleClock(self.start, self.cadence_s)

    @property
    def startup_s(self) -> float:
        return self.policy.scaling.startup_seconds

    def initial_workers(self) -> int:
        return clamp_workers(self.start_workers, self.policy)

    def plan_at(self, obs: Observation) -> PlanRecord | None:
        """The pool's plan at ``obs.t`` (its model: each queue's, in service order); None
        when a queue has no usable history."""
        queues = []
        for q in self.policy.served_queues:
            cf = self.forecasters[q].at(obs.t)
            if cf is None:
                return None  # one queue without history: the pool is not planned
            queues.append(SharedQueue(q, cf.forecast, cf.mean_service_s, cf.service_scv))
        # the pool's fluid backlog is the lowest-priority queue's: it is served last
        last = queues[-1]
        queues[-1] = SharedQueue(
            last.queue, last.forecast, last.mean_service_s, last.service_scv, obs.backlog
        )
        _windows, steps = shared_steps(
            self.policy,
            queues,
            quantile=sizing_quantile(self.policy),
            now=obs.t.to_pydatetime(),
            current_workers=obs.commanded,
            last_scale_at=None
            if obs.last_action_at is None
            else obs.last_action_at.to_pydatetime(),
        )
        model = " + ".join(q.forecast.model for q in queues)
        return PlanRecord(obs.t, model, [(s.execute_at, int(s.to_workers)) for s in steps])

    def command(self, obs: Observation) -> int | None:
        if self._clock.due(obs.t):
            rec = self.plan_at(obs)
            if rec is not None:
                self.plans.append(rec)
        return due_level(self.plans[-1] if self.plans else None, obs.t)


def run_shared_backtest(
    rows: pd.DataFrame,
    policy: ScalingPolicy,
    *,
    start: Any = None,
    end: Any = None,
    cadence_s: float = 1800.0,
    reactive: ReactiveSpec | None = None,
    tick_s: float = DEFAULT_TICK_S,
    progress: Callable[[str, float], None] | None = None,
) -> SharedBacktestResult:
    """Replay [start, end) of a shared pool's queues (``rows`` holds every served queue's
    metric rows) for each strategy in ``SHARED_STRATEGIES`` and score every queue.

    Raises:
        BacktestError: bad cadence or period, or a queue without data (named).
    """
    t0 = time.perf_counter()
    if policy.shared is None:
        raise BacktestError(f"policy {policy.name!r} is not a shared pool")
    if not math.isfinite(cadence_s) or cadence_s <= 0:
        raise BacktestError(f"cadence_s must be > 0 (got {cadence_s!r})")
    window_s = policy.forecast.interval_minutes * 60.0
    window = pd.Timedelta(seconds=window_s)
    warm_n = max(1, math.ceil(cadence_s / window_s))
    per_queue = {
        q: rows.loc[rows["queue"] == q].reset_index(drop=True) for q in policy.served_queues
    }
    for q, r in per_queue.items():
        if r.empty:
            raise BacktestError(f"queue {q!r} of the shared pool: no metric rows")
    begin, stop, cut = _period(per_queue[policy.queue], window, start, end, window * warm_n)
    try:
        traces = [
            demand_trace(
                per_queue[q], queue=q, start=begin - window * warm_n, end=stop, window_s=window_s
            )  # fmt: skip
            for q in policy.served_queues
        ]
    except ValueError as err:
        raise BacktestError(str(err)) from None
    pool = pool_trace(traces, policy.queue)
    oracle = shared_oracle_workers(traces, policy)
    peak = int(oracle[warm_n:].max())
    predictive = SharedPredictiveController(
        policy,
        {q: CycleForecaster(queue_view(policy, q), per_queue[q]) for q in policy.served_queues},
        pool.starts[0],
        cadence_s,
        pool.initial_workers,
    )
    controllers: list[Controller] = [
        predictive,
        ReactiveController(policy, reactive or ReactiveSpec(), pool.initial_workers),
        ScheduleController("static_peak", np.full(len(pool), peak), window_s, pool.starts[0]),
        ScheduleController("oracle", oracle, window_s, pool.starts[0]),
    ]
    replays: dict[str, Replay] = {}
    for k, c in enumerate(controllers):
        tick = None
        if progress is not None:
            tick = _progress_of(progress, c.name, k, len(controllers))
        replays[c.name] = replay(pool, c, tick_s=tick_s, on_window=tick)
    scores = {n: score_pool(traces, r, policy, first_window=warm_n) for n, r in replays.items()}
    notes = list(pool.notes) + ([cut] if cut else [])
    if not predictive.plans:
        notes.append("the predictive strategy made no plan (no usable history)")
    per = next(iter(replays.values())).ticks_per_window
    return SharedBacktestResult(
        policy=policy.name,
        queue=policy.queue,
        queues=tuple(policy.served_queues),
        discipline=policy.shared.discipline,
        window_s=window_s,
        cadence_s=cadence_s,
        tick_s=next(iter(replays.values())).tick_s,
        traces={t.queue: t.from_window(warm_n) for t in traces},
        strategies=scores,
        workers={n: r.commanded.reshape(-1, per)[warm_n:].mean(axis=1) for n, r in replays.items()},
        plans=len(predictive.plans),
        runtime_s=time.perf_counter() - t0,
        notes=notes,
    )
