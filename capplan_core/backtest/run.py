"""``run_backtest``: replay a period of history for every strategy and score them alike.

Entry point for the ``backtest`` flow and ``capplan backtest``. Pure: no Prefect, no I/O
except ``BacktestResult.figure`` (which writes the picture it is asked for).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from capplan_core.backtest.calibration import calibration_summary, window_met_probability
from capplan_core.backtest.demand import DemandTrace, demand_trace
from capplan_core.backtest.hybrid import HybridController, HybridSpec
from capplan_core.backtest.predictive import CycleForecaster, PlanRecord, PredictiveController
from capplan_core.backtest.rate_oracle import rate_oracle_workers
from capplan_core.backtest.replay import DEFAULT_TICK_S, Controller, Replay, replay
from capplan_core.backtest.scoring import StrategyScore, score_replay
from capplan_core.backtest.strategies import (
    ReactiveController,
    ReactiveSpec,
    ScheduleController,
    oracle_workers,
)
from capplan_core.policy import ScalingPolicy

STRATEGIES = ("predictive", "hybrid", "reactive", "static_peak", "oracle", "rate_oracle")
DEFAULT_PERIOD_S = 2 * 86_400.0  # the last two days when no start is given
MIN_HISTORY_S = 86_400.0  # history the first cycle needs before the period


class BacktestError(ValueError):
    """The backtest cannot run on this input; the message names the value."""


@dataclass
class BacktestResult:
    """Scores per strategy and the per-window record they were computed from."""

    policy: str
    queue: str
    window_s: float
    cadence_s: float
    tick_s: float
    trace: DemandTrace  # scored windows only
    strategies: dict[str, StrategyScore]
    workers: dict[str, np.ndarray]  # mean commanded replicas per scored window
    ready_min: dict[str, np.ndarray]  # fewest ready replicas per scored window
    backlog_start: dict[str, np.ndarray]
    plan_log: list[PlanRecord] = field(default_factory=list)  # the predictive plans
    # replica changes per strategy in the scored period: (at, from, to)
    actions: dict[str, list[tuple[pd.Timestamp, int, int]]] = field(default_factory=dict)
    runtime_s: float = 0.0
    seed: int = 0
    # predictive: each scored window's P(met) under the plan in force (calibration.py)
    met_probability: np.ndarray = field(default_factory=lambda: np.zeros(0))
    calibration: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def start(self) -> pd.Timestamp:
        return self.trace.starts[0]

    @property
    def end(self) -> pd.Timestamp:
        return self.trace.end

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON (docs/backtest.md) as plain Python values; inf -> None."""
        oracle_wh = self.strategies["oracle"].worker_hours if "oracle" in self.strategies else None
        rate_wh = (
            self.strategies["rate_oracle"].worker_hours
            if "rate_oracle" in self.strategies
            else None
        )
        strategies = {}
        for name, s in self.strategies.items():
            strategies[name] = {
                "slo_attainment": s.slo_attainment,
                "windows_missed": s.windows_missed,
                "wait_p95_s": _num(s.wait_p95_s),
                "worst_backlog": _num(s.worst_backlog),
                "worker_hours": s.worker_hours,
                "cost": s.cost,
                "violation_cost": s.violation_cost,
                "total_cost": s.cost + s.violation_cost,
                "scaling_actions": s.scaling_actions,
                "changes_per_window": s.changes_per_window,
                "actions_per_day": s.actions_per_day,
                "worker_hours_vs_oracle": (s.worker_hours / oracle_wh) if oracle_wh else None,
                "worker_hours_vs_rate_oracle": (s.worker_hours / rate_wh) if rate_wh else None,
                "windows_with_demand": s.windows_with_demand,
            }
        windows = []
        for i, t in enumerate(self.trace.starts):
            windows.append(
                {
                    "start": t.isoformat(),
                    "arrival_rate": float(self.trace.arrival_rate_per_s[i]),
                    "service_rate": float(self.trace.service_rate_per_s[i]),
                    "service_scv": float(self.trace.service_scv[i]),
                    "workers": {n: round(float(w[i]), 4) for n, w in self.workers.items()},
                    "ready_min": {n: int(w[i]) for n, w in self.ready_min.items()},
                    "backlog_start": {
                        n: round(float(b[i]), 3) for n, b in self.backlog_start.items()
                    },
                    "meets_slo": {n: s.windows[i].meets_slo for n, s in self.strategies.items()},
                    "wait_p95_s": {
                        n: _num(s.windows[i].wait_p95_s) for n, s in self.strategies.items()
                    },
                    "met_probability": (
                        _num(float(self.met_probability[i]))
                        if i < len(self.met_probability)
                        else None
                    ),
                }
            )
        return {
            "policy": self.policy,
            "queue": self.queue,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "window_s": self.window_s,
            "cadence_s": self.cadence_s,
            "tick_s": self.tick_s,
            "seed": self.seed,
            "plans": len(self.plan_log),
            "runtime_s": round(self.runtime_s, 3),
            "strategies": strategies,
            "windows": windows,
            "calibration": self.calibration,
            "notes": list(self.notes),
        }

    def to_json(self, indent: int | None = 2) -> str:
        """``to_dict()`` serialised as JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    def figure(self, path: str | Path) -> Path:
        """Draw demand, each strategy's workers and missed windows to ``path`` (PNG/SVG)."""
        from capplan_core.backtest.figure import draw_backtest

        return draw_backtest(self, Path(path))


def _num(v: float) -> float | None:
    return None if not math.isfinite(v) else float(v)


def _utc(t: Any) -> pd.Timestamp:
    ts = pd.Timestamp(t)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _period(
    rows: pd.DataFrame, window: pd.Timedelta, start: Any, end: Any, warmup: pd.Timedelta
) -> tuple[pd.Timestamp, pd.Timestamp, str | None]:
    """[begin, stop) to score, and a note when ``end`` was cut back to the last metrics."""
    ts = pd.to_datetime(rows["timestamp"], utc=True).dropna()
    if ts.empty:
        raise BacktestError("no metric rows for this queue")
    first, last = ts.min(), ts.max()
    # never past the last metrics: a queue that stopped reporting has no demand to score
    # there, and filling it from the last value would invent the evidence
    cut = None
    stop = last.floor(window)
    if end is not None:
        asked, reported = _utc(end).floor(window), last.floor(window) + window
        stop = min(asked, reported)
        if asked > stop:
            cut = (
                f"the period ends at {stop.isoformat()}, after the last metrics, not at "
                f"{asked.isoformat()}: the queue has reported nothing since"
            )
    begin = (
        _utc(start).ceil(window)
        if start is not None
        else max(
            stop - pd.Timedelta(seconds=DEFAULT_PERIOD_S),
            (first + pd.Timedelta(seconds=MIN_HISTORY_S) + warmup).ceil(window),
        )
    )
    if begin >= stop:
        raise BacktestError(
            f"empty period: start {begin.isoformat()} is not before end "
            f"{stop.isoformat()} (data {first.isoformat()} .. "
            f"{last.isoformat()})"
        )
    if begin - warmup <= first:
        raise BacktestError(
            f"start {begin.isoformat()} leaves no history before it "
            f"(data starts {first.isoformat()})"
        )
    return begin, stop, cut


def run_backtest(
    frame_rows_for_queue: pd.DataFrame,
    policy: ScalingPolicy,
    *,
    start: Any = None,
    end: Any = None,
    cadence_s: float = 1800.0,
    seed: int = 0,
    reactive: ReactiveSpec | None = None,
    tick_s: float = DEFAULT_TICK_S,
    hybrid: HybridSpec | None = None,
    prove_engine: str | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> BacktestResult:
    """Replay [start, end) of one queue's history for every strategy in ``STRATEGIES``.

    ``frame_rows_for_queue`` holds the metric rows of ``policy.queue`` (metrics-file columns).
    Default period: the last two days of the data. One planning cycle before ``start`` is
    played as warm-up for every strategy and not scored. ``seed`` is recorded only (the
    replay is deterministic). ``prove_engine`` (``fluid``, ``fast``, ``auto``...) makes the
    predictive strategy replay the production decide loop (plan, Monte Carlo, re-plan) at
    every cycle instead of the planner alone. ``progress(strategy, share_done)`` is called
    after every replayed window (share of the whole run, 0..1), e.g. to drive a CLI progress
    bar or a Prefect progress artifact.

    Raises:
        BacktestError: bad cadence or period, or no data (the message names the value).
    """
    t0 = time.perf_counter()
    if policy.shared is not None:
        raise BacktestError(
            f"policy {policy.name!r} is a shared pool: run_shared_backtest replays all its "
            "queues and scores each against its own SLO"
        )
    if not math.isfinite(cadence_s) or cadence_s <= 0:
        raise BacktestError(f"cadence_s must be > 0 (got {cadence_s!r})")
    if "queue" in frame_rows_for_queue and (frame_rows_for_queue["queue"] != policy.queue).any():
        frame_rows_for_queue = frame_rows_for_queue.loc[
            frame_rows_for_queue["queue"] == policy.queue
        ].reset_index(drop=True)
    window_s = policy.forecast.interval_minutes * 60.0
    window = pd.Timedelta(seconds=window_s)
    warm_n = max(1, math.ceil(cadence_s / window_s))
    warmup = window * warm_n
    begin, stop, cut = _period(frame_rows_for_queue, window, start, end, warmup)
    try:
        trace = demand_trace(
            frame_rows_for_queue,
            queue=policy.queue,
            start=begin - warmup,
            end=stop,
            window_s=window_s,
        )
    except ValueError as err:
        raise BacktestError(str(err)) from None
    oracle = oracle_workers(trace, policy)
    rate_oracle = rate_oracle_workers(trace, policy)
    peak = int(oracle[warm_n:].max())
    forecaster = CycleForecaster(policy, frame_rows_for_queue)
    predictive = PredictiveController(
        policy,
        forecaster,
        trace.starts[0],
        cadence_s,
        trace.initial_workers,
        prove_engine=prove_engine,
    )
    controllers: list[Controller] = [
        predictive,
        HybridController(
            policy,
            forecaster,
            trace.starts[0],
            cadence_s,
            trace.initial_workers,
            hybrid or HybridSpec(reactive=reactive or ReactiveSpec()),
        ),
        ReactiveController(policy, reactive or ReactiveSpec(), trace.initial_workers),
        ScheduleController("static_peak", np.full(len(trace), peak), window_s, trace.starts[0]),
        ScheduleController("oracle", oracle, window_s, trace.starts[0]),
        ScheduleController("rate_oracle", rate_oracle, window_s, trace.starts[0]),
    ]
    replays = {}
    for k, c in enumerate(controllers):
        tick = None if progress is None else _progress_of(progress, c.name, k, len(controllers))
        replays[c.name] = replay(trace, c, tick_s=tick_s, on_window=tick)
    scores = {n: score_replay(trace, r, policy, first_window=warm_n) for n, r in replays.items()}
    scored = trace.from_window(warm_n)
    ready = {n: _per_window(r, r.ready, warm_n, np.min) for n, r in replays.items()}
    busy = scored.arrival_rate_per_s > 0
    p_met = window_met_probability(
        predictive.plans, scored.starts, ready["predictive"].astype(int), policy
    )
    met = np.asarray([w.meets_slo for w in scores["predictive"].windows])
    notes = list(trace.notes) + ([cut] if cut else [])
    if not predictive.plans:
        notes.append("the predictive strategy made no plan (no usable history)")
    return BacktestResult(
        policy=policy.name,
        queue=policy.queue,
        window_s=window_s,
        cadence_s=cadence_s,
        tick_s=next(iter(replays.values())).tick_s,
        trace=scored,
        strategies=scores,
        workers={n: _per_window(r, r.commanded, warm_n, np.mean) for n, r in replays.items()},
        ready_min=ready,
        met_probability=p_met,
        calibration=calibration_summary(p_met, met, busy, scored.starts),
        backlog_start={
            n: _per_window(r, r.backlog_start, warm_n, _first) for n, r in replays.items()
        },
        plan_log=list(predictive.plans),
        runtime_s=time.perf_counter() - t0,
        seed=seed,
        actions={n: [a for a in r.actions if a[0] >= scored.starts[0]] for n, r in replays.items()},
        notes=notes,
    )


def _progress_of(
    progress: Callable[[str, float], None], name: str, k: int, n: int
) -> Callable[[int, int], None]:
    # forecast-driven strategies dominate the runtime, but equal shares keep it simple
    return lambda done, total: progress(name, (k + done / max(total, 1)) / n)


def _first(a: np.ndarray, axis: int) -> np.ndarray:
    return np.asarray(np.take(a, 0, axis=axis))


def _per_window(rep: Replay, values: np.ndarray, first: int, how: Any) -> np.ndarray:
    per = rep.ticks_per_window
    grid = values.reshape(-1, per)[first:]
    return np.asarray(how(grid, axis=1), dtype=float)
