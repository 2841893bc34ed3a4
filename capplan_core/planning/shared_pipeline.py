"""The pipeline of a shared pool: each queue collected, cleaned and forecast on its own, the
pool planned for all of them (:mod:`.shared_plan`), and the result in the shape every later
stage takes (a :class:`~capplan_core.planning.decide.Decision` in a
:class:`~capplan_core.planning.pipeline.QueueOutcome`): storing, approval and execution do
not change for a shared pool.

The plan is kept under the policy's ``queue``; its assessment and forecast are that queue's,
and its windows and steps carry every queue's demand, the queue that drives each step and
every queue's predicted wait. A queue that cannot be planned (nothing collected, a failed
data-quality expectation, no usable history) skips the whole pool, naming the queue: a pool
planned without one of its queues would starve it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from capplan_core.forecast import ForecastResult
from capplan_core.planning import pipeline
from capplan_core.planning.cost import plan_cost
from capplan_core.planning.decide import Decision
from capplan_core.planning.planner import PlannedStep, PlanProposal, commanded_at
from capplan_core.planning.pool_state import QueueState, pool_state
from capplan_core.planning.shared_plan import (
    SharedPlan,
    SharedQueue,
    SimulateFn,
    plan_shared_pool,
)
from capplan_core.policy import Mode, ScalingPolicy
from capplan_core.quality import Assessment
from capplan_core.simulation import simulate


def queue_view(policy: ScalingPolicy, queue: str) -> ScalingPolicy:
    """The pool's policy as one of its queues sees it: that queue and its SLO, no shared
    section (what collecting, cleaning, data quality and the forecast of the queue read)."""
    return policy.model_copy(update={"queue": queue, "slo": policy.slo_of(queue), "shared": None})


def plan_shared(
    policy: ScalingPolicy,
    read_rows: pipeline.ReadRows,
    now: datetime,
    *,
    from_file: bool = False,
    live_count: pipeline.LiveCount | None = None,
    simulate_fn: SimulateFn = simulate,
    no_rows_reason: pipeline.NoRowsReason | None = None,
    last_scale_at: datetime | None = None,
    on_queue: Callable[[Assessment, ForecastResult | None], None] | None = None,
) -> pipeline.QueueOutcome:
    """Every stage of a shared pool (module doc); ``on_queue(assessment, forecast)`` after
    each queue is cleaned and forecast (the flow publishes their artifacts)."""
    assessments: dict[str, Assessment] = {}
    forecasts: dict[str, ForecastResult] = {}
    states: dict[str, QueueState] = {}
    for q in policy.served_queues:
        view = queue_view(policy, q)
        rows = read_rows(view)
        skip = pipeline.nothing_collected(
            rows, view, now, from_file=from_file, no_rows_reason=no_rows_reason
        )
        if skip is not None:
            return _skipped(policy, f"queue {q} of the shared pool: {skip}", None)
        assessment = pipeline.clean(rows, view, now)
        assessments[q] = assessment
        skip = pipeline.quality_skip(assessment, view)
        got = pipeline.forecast(assessment, view) if skip is None else skip
        if on_queue is not None:
            on_queue(assessment, None if isinstance(got, str) else got)
        if isinstance(got, str):
            return _skipped(policy, f"queue {q} of the shared pool: {got}", assessment)
        forecasts[q] = got
        states[q] = pool_state(assessment.clean)
    main = assessments[policy.queue]
    # each queue's rows count the workers listening to it: the pool's, not a share of it
    measured = max(s.current_workers for s in states.values())
    if live_count is not None:
        workers, source = live_count(policy, measured)
        state = pool_state(main.clean, live_workers=workers, replica_source=source)
    else:
        state = replace(pool_state(main.clean), current_workers=measured)
    shared = plan_shared_pool(
        policy,
        [
            SharedQueue(
                q,
                forecasts[q],
                mean_service_s=s.mean_service_s,
                service_scv=s.service_scv,
                backlog=s.current_backlog,
            )
            for q, s in states.items()
        ],
        now=now,
        current_workers=int(state.current_workers),
        last_scale_at=last_scale_at,
        simulate_fn=simulate_fn,
    )
    quality_warning = any(a.quality.warnings for a in assessments.values())
    return pipeline.QueueOutcome(
        policy,
        "planned",
        assessment=main,
        forecast=forecasts[policy.queue],
        state=state,
        decision=as_decision(policy, shared, state, now, quality_warning=quality_warning),
    )


def _skipped(
    policy: ScalingPolicy, reason: str, assessment: Assessment | None
) -> pipeline.QueueOutcome:
    return pipeline.QueueOutcome(policy, "skipped", assessment=assessment, reason=reason)


def as_decision(
    policy: ScalingPolicy,
    shared: SharedPlan,
    state: QueueState,
    now: datetime,
    *,
    quality_warning: bool = False,
) -> Decision:
    """The shared plan as the decision every later stage takes (module doc)."""
    current = int(state.current_workers)
    steps = [
        PlannedStep(s.execute_at, s.from_workers, s.to_workers, s.reason, _step_explanation(s))
        for s in shared.steps
    ]
    schedule = [(w.start, commanded_at(w.start, current, steps)) for w in shared.windows]
    window_s = (
        (shared.windows[1].start - shared.windows[0].start).total_seconds()
        if len(shared.windows) > 1
        else policy.forecast.interval_minutes * 60.0
    )
    counts = [n for _, n in schedule] + [s.to_workers for s in steps]
    reasons = list(shared.reasons)
    change = max(abs(n - current) for n in counts)
    if quality_warning:
        reasons.append("data-quality warning: auto approval downgraded to manual")
    if change > policy.scaling.auto_max_change:
        reasons.append(
            f"change of {change} workers exceeds auto_max_change "
            f"{policy.scaling.auto_max_change}: auto approval downgraded to manual"
        )
    auto_allowed = (
        policy.mode == Mode.AUTO
        and not quality_warning
        and (change <= policy.scaling.auto_max_change)
    )
    proposal = PlanProposal(
        current_workers=current,
        target_workers=max(counts),
        schedule=schedule,
        steps=steps,
        slo_achievable=shared.slo_achievable,
        reasons=reasons,
        cost=plan_cost(
            starts=[w.start for w in shared.windows],
            window_s=window_s,
            current_workers=current,
            steps=[(s.execute_at, s.to_workers) for s in steps],
            peak_workers=max(w.needed_workers for w in shared.windows),
            worker_hour=policy.cost.worker_hour,
            violation_hour=policy.cost.violation_hour,
        ),
        auto_allowed=auto_allowed,
        expires_at=now + timedelta(seconds=policy.scaling.plan_expiry_seconds),
        as_of=now,
        windows=[_window_row(w, n) for w, (_, n) in zip(shared.windows, schedule, strict=True)],
        settings={
            "shared_pool": {
                "discipline": policy.shared.discipline if policy.shared else None,
                "queues": policy.served_queues,
                "model": shared.windows[0].model,
                "exact": shared.windows[0].exact,
                "demand_quantile": shared.windows[0].quantile,
            }
        },
    )
    return Decision(
        proposal,
        shared.simulation,
        shared.confidence,
        shared.slo_achievable,
        shared.attempts,
        reasons,
    )


def _window_row(w: Any, scheduled: int) -> dict[str, Any]:
    """A window in the single-queue row's columns (demand: the pool's total), plus each
    queue's demand, the queue that drives it and every queue's predicted wait."""
    total = float(sum(w.demand_per_s.values()))
    return {
        "window_start": w.start,
        "demand_per_s": total,
        "demand_quantile": w.quantile,
        "safety_margin": 0.0,
        "arrival_rate_per_s": total,
        "model_workers": w.sized_workers,
        "margin_workers": 0,
        "extra_workers": w.extra_workers,
        "wanted_workers": w.sized_workers + w.extra_workers,
        "needed_workers": w.needed_workers,
        "scheduled_workers": scheduled,
        "binding_term": f"{w.driving_queue}: {w.driving_term}" if w.driving_queue else "none",
        "constraints": "; ".join(str(c["constraint"]) for c in w.constraints),
        "note": "",
        "attainment_mode": "per_window",
        "met_probability": None,
        "queue_demand_per_s": dict(w.demand_per_s),
        "driving_queue": w.driving_queue,
        "predicted_wait_s": dict(w.predicted_wait_s),
    }


def _step_explanation(s: Any) -> dict[str, Any]:
    e = dict(s.explanation)
    total = float(sum(e["demand_per_s"].values()))
    return {
        **e,
        "direction": "up" if s.to_workers > s.from_workers else "down",
        "queue_demand_per_s": e["demand_per_s"],
        "demand_per_s": total,
        "demand_quantile": None,
        "model_workers": s.to_workers,
        "margin_workers": 0,
        "extra_workers": 0,
        "constraints": [],
    }
