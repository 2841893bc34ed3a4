"""Plan a shared pool: several queues, one set of workers, an SLO each (issue 23).

docs/shared-pools.md gives the maths; this module turns per-queue forecasts into a plan:

1. each queue's demand per window at the sizing quantile (``window_sizing.sizing_quantile``,
   the attainment target: a window sized to the q-quantile of a calibrated forecast meets
   its demand with probability q);
2. each window sized by ``queueing.pool_sizing.required_workers_priority``: the least pool
   for which **every** queue meets its own SLO under the policy's discipline (exact for a
   strict M/M/c with one service rate, else the named approximation); the queue that one
   worker fewer would fail first *drives* the window;
3. min/max/budget, then the same calm scheduler as a single queue (dwell, hysteresis,
   cooldown, startup lead; ``scheduler.schedule_steps``);
4. proven by Monte Carlo on every queue's own demand paths with the class engines
   (``simulation.class_scenario``): a replication meets the plan only when every queue met
   its SLO in every window; windows that failed get a worker more and the plan is simulated
   again, up to ``scaling.max_replans`` times.

Each step's explanation says which queue drives it and every queue's predicted wait there.
Pure: the forecasts, the pool's state and the simulation function come from the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from capplan_core.forecast import ForecastResult
from capplan_core.planning import defaults
from capplan_core.planning.decide import FAILING_WINDOW_SHARE
from capplan_core.planning.plan_scenario import MAX_DEMAND_PATHS, elapsed_s, service_kind
from capplan_core.planning.planner import PlannedStep
from capplan_core.planning.scheduler import schedule_steps
from capplan_core.planning.window_sizing import (
    SIZING_SEARCH_LIMIT,
    budget_cap_workers,
    clamp_workers,
    sizing_quantile,
    slo_terms,
)
from capplan_core.policy import ScalingPolicy
from capplan_core.queueing.pool_sizing import (
    PoolClass,
    PoolSizingResult,
    required_workers_priority,
)
from capplan_core.simulation import JobClass, SimulationSummary, class_scenario, simulate


@dataclass(frozen=True)
class SharedQueue:
    """One queue of the pool as the pipeline saw it: its forecast (jobs/s per window), its
    mean service time (s) and service SCV, and its backlog now (jobs)."""

    queue: str
    forecast: ForecastResult
    mean_service_s: float
    service_scv: float = 1.0
    backlog: float = 0.0


@dataclass(frozen=True)
class SharedWindow:
    """One window: each queue's demand, the workers every queue's SLO needs, what drives it."""

    start: datetime
    demand_per_s: dict[str, float]
    sized_workers: int
    needed_workers: int
    driving_queue: str | None
    driving_term: str
    predicted_wait_s: dict[str, float]  # each queue's wait at its SLO quantile, sized count
    model: str
    exact: bool
    constraints: list[dict[str, object]] = field(default_factory=list)
    extra_workers: int = 0  # added where the simulation failed the window (re-plans)
    quantile: float = 0.0  # the demand quantile each queue's demand was read at


@dataclass(frozen=True)
class SharedPlan:
    windows: list[SharedWindow]
    steps: list[PlannedStep]
    simulation: SimulationSummary
    confidence: float  # share of replications in which every queue met its SLO throughout
    slo_achievable: bool
    attempts: int
    reasons: list[str]


SimulateFn = Callable[..., SimulationSummary]


def plan_shared_pool(
    policy: ScalingPolicy,
    queues: Sequence[SharedQueue],
    *,
    now: datetime,
    current_workers: int,
    last_scale_at: datetime | None = None,
    simulate_fn: SimulateFn = simulate,
) -> SharedPlan:
    """Plan ``policy``'s shared pool from its queues' forecasts (see the module doc).

    Raises:
        ValueError: ``policy`` is not a shared pool, or ``queues`` are not exactly its queues
            with forecasts on the same windows.
    """
    by_name = _checked(policy, queues)
    ordered = [by_name[q] for q in policy.served_queues]
    q = sizing_quantile(policy)
    starts = [t.to_pydatetime() for t in ordered[0].forecast.timestamps]
    window_s = ordered[0].forecast.interval_s
    paths = _demand_paths(policy, ordered)
    extra = [0] * len(starts)
    attempts, reasons = 0, []
    while True:
        attempts += 1
        windows, steps = shared_steps(
            policy,
            ordered,
            quantile=q,
            now=now,
            current_workers=current_workers,
            last_scale_at=last_scale_at,
            extra=extra,
        )
        summary = simulate_fn(
            _scenario(policy, ordered, paths, steps, current_workers, starts[0], window_s, now),
            replications=policy.simulation.replications,
            seed=policy.simulation.seed,
        )
        confidence = float(summary.slo_achievement_rate)
        failing = np.asarray(summary.window_failure_rate) > FAILING_WINDOW_SHARE
        if (
            confidence >= policy.scaling.confidence_threshold
            or attempts > policy.scaling.max_replans
            or not failing.any()
        ):
            break
        extra = [e + int(f) for e, f in zip(extra, failing, strict=True)]
    achievable = confidence >= policy.scaling.confidence_threshold
    capped = [
        w for w in windows if any(c["constraint"] in ("max", "budget") for c in w.constraints)
    ]
    if capped:
        reasons.append(
            f"SLO not achievable: max_workers {policy.scaling.max_workers} (or the budget) is "
            f"below what every queue's SLO needs in {len(capped)} of {len(windows)} window(s)"
        )
        achievable = False
    if not achievable and not capped:
        reasons.append(
            f"simulated confidence {confidence:.3f} is below scaling.confidence_threshold "
            f"{policy.scaling.confidence_threshold} after {attempts} attempt(s)"
        )
    return SharedPlan(windows, steps, summary, confidence, achievable, attempts, reasons)


def shared_steps(
    policy: ScalingPolicy,
    queues: Sequence[SharedQueue],
    *,
    quantile: float,
    now: datetime,
    current_workers: int,
    last_scale_at: datetime | None = None,
    extra: Sequence[int] | None = None,
) -> tuple[list[SharedWindow], list[PlannedStep]]:
    """Steps 1-3 of the module doc, without the proof: each window sized for every queue
    at the ``quantile`` of its forecast (plus ``extra`` workers per window), then the calm
    scheduler. ``plan_shared_pool`` proves the result; the backtest replays it as is."""
    ordered = [q for name in policy.served_queues for q in queues if q.queue == name]
    demand = {s.queue: np.maximum(s.forecast.quantile(quantile), 0.0) for s in ordered}
    starts = [t.to_pydatetime() for t in ordered[0].forecast.timestamps]
    more = list(extra) if extra is not None else [0] * len(starts)
    windows = [
        _window(policy, ordered, demand, quantile, i, t, more[i]) for i, t in enumerate(starts)
    ]
    typical = defaults.typical_workers([w.sized_workers for w in windows])
    raw, _holds = schedule_steps(
        [w.needed_workers for w in windows],
        starts,
        now=now,
        current_workers=current_workers,
        scaling=defaults.resolved_scaling(policy, typical),
        last_scale_at=last_scale_at,
    )
    steps = [_step(r.execute_at, r.from_workers, r.to_workers, windows, r.covers) for r in raw]
    return windows, steps


def queue_weights(policy: ScalingPolicy) -> dict[str, float]:
    """Each queue's weight under ``weighted`` (1 where unset; unused by the other disciplines)."""
    assert policy.shared is not None
    return {c.queue: c.weight or 1.0 for c in policy.shared.queues}


def _checked(policy: ScalingPolicy, queues: Sequence[SharedQueue]) -> dict[str, SharedQueue]:
    if policy.shared is None:
        raise ValueError(f"policy {policy.name!r} is not a shared pool (no shared section)")
    by_name = {s.queue: s for s in queues}
    if sorted(by_name) != sorted(policy.served_queues) or len(by_name) != len(queues):
        raise ValueError(
            f"queues: {sorted(by_name)} must be exactly the pool's {policy.served_queues}"
        )
    first = queues[0].forecast.timestamps
    for s in queues:
        if not s.forecast.timestamps.equals(first):
            raise ValueError(f"queue {s.queue!r}: its forecast windows differ from the others'")
        if not (np.isfinite(s.mean_service_s) and s.mean_service_s > 0):
            raise ValueError(f"queue {s.queue!r}: mean_service_s must be finite and > 0")
    return by_name


def _window(
    policy: ScalingPolicy,
    ordered: list[SharedQueue],
    demand: dict[str, np.ndarray],
    quantile: float,
    i: int,
    start: datetime,
    extra: int,
) -> SharedWindow:
    """Window ``i`` sized for every queue (the backlog now must drain in the first one)."""
    assert policy.shared is not None
    weights = queue_weights(policy)
    classes = [
        PoolClass(
            s.queue,
            float(demand[s.queue][i]),
            slo_terms(policy.slo_of(s.queue), s.backlog if i == 0 else 0.0),
            mean_service_s=s.mean_service_s,
            service_scv=s.service_scv,
            weight=weights[s.queue],
        )
        for s in ordered
    ]
    sized: PoolSizingResult = required_workers_priority(
        classes,
        ordered[0].mean_service_s,
        discipline=policy.shared.discipline,
        max_workers=SIZING_SEARCH_LIMIT,
    )
    sc = policy.scaling
    needed, constraints = clamp_workers(
        sized.workers + extra, sc.min_workers, sc.max_workers, budget_cap_workers(policy)
    )
    return SharedWindow(
        start=start,
        demand_per_s={c.name: c.arrival_rate_per_s for c in classes},
        sized_workers=sized.workers,
        needed_workers=needed,
        driving_queue=sized.binding_class,
        driving_term=sized.binding_term,
        predicted_wait_s={r.name: r.wait_quantile_s for r in sized.classes},
        model=sized.model,
        exact=sized.exact,
        constraints=constraints,
        extra_workers=extra,
        quantile=quantile,
    )


def _step(
    at: datetime, frm: int, to: int, windows: list[SharedWindow], covers: list[int]
) -> PlannedStep:
    """A step and why: the window that set its level, the queue driving it, every queue's
    predicted wait there (s)."""
    at_i = max(covers, key=lambda i: windows[i].needed_workers, default=0)
    w = windows[at_i]
    waits = ", ".join(f"{q} {s:.1f} s" for q, s in w.predicted_wait_s.items())
    driver = (
        f"queue {w.driving_queue} drives it ({w.driving_term})"
        if w.driving_queue
        else "no queue's SLO binds (min_workers)"
    )
    verb = "up" if to > frm else "down"
    reason = (
        f"scale {verb} {frm} -> {to} for the window at {w.start.isoformat()}: {driver}; "
        f"predicted waits at the SLO quantiles: {waits} ({w.model})"
    )
    return PlannedStep(
        at,
        frm,
        to,
        reason,
        {
            "window_index": at_i,
            "window_start": w.start.isoformat(),
            "driving_queue": w.driving_queue,
            "driving_term": w.driving_term,
            "predicted_wait_s": dict(w.predicted_wait_s),
            "demand_per_s": dict(w.demand_per_s),
            "model": w.model,
            "exact": w.exact,
        },
    )


def _demand_paths(policy: ScalingPolicy, ordered: list[SharedQueue]) -> dict[str, np.ndarray]:
    """Each queue's demand paths (its own forecast's predictive paths, its own stream)."""
    sim = policy.simulation
    n = min(sim.replications, MAX_DEMAND_PATHS)
    seeds = np.random.SeedSequence(sim.seed).spawn(len(ordered))
    return {
        s.queue: np.maximum(s.forecast.simulate(n, np.random.default_rng(seed)), 0.0)
        for s, seed in zip(ordered, seeds, strict=True)
    }


def _scenario(
    policy: ScalingPolicy,
    ordered: list[SharedQueue],
    paths: dict[str, np.ndarray],
    steps: list[PlannedStep],
    current_workers: int,
    start: datetime,
    window_s: float,
    now: datetime,
) -> Any:
    """The plan as a class scenario: each queue's own demand paths, service and SLO; the
    part of the first window before ``now`` is played as warm-up, never judged (nobody can
    change it any more), as for a single queue (``plan_scenario``)."""
    assert policy.shared is not None
    weights = queue_weights(policy)
    classes = [
        JobClass(
            s.queue,
            paths[s.queue],
            mean_service_s=s.mean_service_s,
            service_scv=s.service_scv,
            service_kind=service_kind(s.service_scv),
            slo_wait_s=policy.slo_of(s.queue).wait_seconds,
            slo_wait_quantile=policy.slo_of(s.queue).wait_quantile,
            weight=weights[s.queue],
            initial_backlog=int(round(s.backlog)),
        )
        for s in ordered
    ]
    n_windows = paths[ordered[0].queue].shape[1]
    sim = policy.simulation
    return class_scenario(
        classes,
        discipline=policy.shared.discipline,
        horizon_s=window_s * n_windows,
        window_s=window_s,
        initial_workers=int(current_workers),
        steps=[(max(0.0, (s.execute_at - start).total_seconds()), s.to_workers) for s in steps],
        startup_s=policy.scaling.startup_seconds,
        mtbf_s=sim.mtbf_seconds,
        restart_s=sim.restart_seconds,
        quota_workers=sim.quota_workers,
        warmup_s=elapsed_s(start, now, window_s * n_windows),
    )
