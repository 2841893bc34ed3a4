"""The capacity planner: forecast demand + policy → a schedule of scaling steps.

``plan_capacity`` sizes every window to the SLO with the queueing model (``needs``), moves
the pool with the policy's safety limits (``scheduler``), prices the result (``cost``) and
says whether the plan may be approved automatically. Pure: no I/O, no Prefect, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from capplan_core.planning import defaults
from capplan_core.planning.constraints import constraint_text
from capplan_core.planning.cost import plan_cost
from capplan_core.planning.pooled_sizing import DemandDistribution, capacity_fn, window_floor
from capplan_core.planning.scheduler import RawStep, schedule_steps
from capplan_core.planning.window_sizing import (
    SIZING_SEARCH_LIMIT,
    WindowNeed,
    budget_cap_workers,
    met_probabilities,
    slo_terms_from_policy,
    window_needs,
)
from capplan_core.policy import Mode, ScalingPolicy, ScalingSpec
from capplan_core.queueing.sizing import required_workers


@dataclass(frozen=True)
class PlanInput:
    """Everything the planner needs. Rates jobs/s, times s, datetimes tz-aware UTC."""

    policy: ScalingPolicy
    now: datetime
    current_workers: int
    current_backlog: float
    mean_service_s: float
    service_scv: float
    window_starts: list[datetime]
    window_s: float
    demand_per_s: np.ndarray  # per window, at ``demand_quantile``
    extra_workers: np.ndarray | None = None
    last_scale_at: datetime | None = None
    anomaly: bool = False
    data_quality_warning: bool = False
    anomaly_note: str | None = None  # which recent window was anomalous, with the numbers
    # the quantile demand_per_s was read at; None = policy.forecast.demand_quantile. Only a
    # demand at slo.target_attainment is sized without the safety margin (window_sizing).
    demand_quantile: float | None = None
    # the demand's predictive distribution per window (pooled_sizing.distribution_from_
    # forecast); used only by slo.attainment_mode: pooled, which sizes without it per window
    demand_distribution: DemandDistribution | None = None


@dataclass(frozen=True)
class PlannedStep:
    execute_at: datetime
    from_workers: int
    to_workers: int
    reason: str
    explanation: dict[str, Any]


@dataclass(frozen=True)
class PlanProposal:
    current_workers: int
    target_workers: int  # max scheduled count over the horizon
    schedule: list[tuple[datetime, int]]  # replicas commanded at each window start
    steps: list[PlannedStep]
    slo_achievable: bool
    reasons: list[str]
    cost: dict[str, Any]
    auto_allowed: bool
    expires_at: datetime
    as_of: datetime
    windows: list[dict[str, Any]] = field(default_factory=list)  # per-window explanation
    settings: dict[str, Any] = field(default_factory=dict)  # derived defaults it used


def _validate(inp: PlanInput) -> tuple[list[float], list[int]]:
    n = len(inp.window_starts)
    demand = np.asarray(inp.demand_per_s, dtype=float).ravel()
    if n == 0:
        raise ValueError("window_starts must hold at least one window")
    if demand.size != n:
        raise ValueError(f"demand_per_s has {demand.size} values for {n} windows")
    if not np.all(np.isfinite(demand)) or demand.min() < 0:
        raise ValueError("demand_per_s must be finite and >= 0 in every window")
    extra = (
        np.zeros(n, dtype=int)
        if inp.extra_workers is None
        else np.asarray(inp.extra_workers).ravel()
    )
    if extra.size != n or not np.all(np.isfinite(extra)) or extra.min() < 0:
        raise ValueError(f"extra_workers must hold {n} non-negative values")
    if inp.current_workers < 0:
        raise ValueError(f"current_workers must be >= 0 (got {inp.current_workers})")
    for name in ("mean_service_s", "window_s"):
        v = getattr(inp, name)
        if not math.isfinite(v) or v <= 0:
            raise ValueError(f"{name} must be finite and > 0 (got {v!r})")
    if not math.isfinite(inp.service_scv) or inp.service_scv < 0:
        raise ValueError(f"service_scv must be finite and >= 0 (got {inp.service_scv!r})")
    if not math.isfinite(inp.current_backlog) or inp.current_backlog < 0:
        raise ValueError(f"current_backlog must be finite and >= 0 (got {inp.current_backlog!r})")
    if any(b <= a for a, b in zip(inp.window_starts, inp.window_starts[1:], strict=False)):
        raise ValueError("window_starts must be strictly increasing")
    return demand.tolist(), [int(x) for x in extra]


def plan_capacity(inp: PlanInput) -> PlanProposal:
    """Plan the pool's workers over the forecast horizon (docs/architecture.md, "The pipeline").

    Raises:
        ValueError: inconsistent input (lengths, negative or non-finite values), named.
    """
    demand, extra = _validate(inp)
    policy = inp.policy
    typical = _typical_workers(inp, demand)
    sc = defaults.resolved_scaling(policy, typical)
    needs, raw_steps, holds = _sized_and_scheduled(inp, demand, extra, sc)
    steps = [_planned(s, needs, sc.startup_seconds) for s in raw_steps]
    schedule = [(w.start, commanded_at(w.start, inp.current_workers, steps)) for w in needs]
    target = max([n for _, n in schedule] + [s.to_workers for s in steps])
    reasons, achievable = _slo_reasons(needs, policy)
    auto_allowed, auto_reasons = _auto_limits(inp, schedule, steps)
    reasons += auto_reasons
    cost = plan_cost(
        starts=list(inp.window_starts),
        window_s=inp.window_s,
        current_workers=inp.current_workers,
        steps=[(s.execute_at, s.to_workers) for s in steps],
        peak_workers=max(w.needed_workers for w in needs),
        worker_hour=policy.cost.worker_hour,
        violation_hour=policy.cost.violation_hour,
    )
    windows = [
        _window_row(w, n, holds.get(w.index)) for w, (_, n) in zip(needs, schedule, strict=True)
    ]
    return PlanProposal(
        current_workers=inp.current_workers,
        target_workers=target,
        schedule=schedule,
        steps=steps,
        slo_achievable=achievable,
        reasons=reasons,
        cost=cost,
        auto_allowed=auto_allowed,
        expires_at=inp.now + timedelta(seconds=sc.plan_expiry_seconds),
        as_of=inp.now,
        windows=windows,
        settings=defaults.described(policy, typical),
    )


def _typical_workers(inp: PlanInput, demand: list[float]) -> float:
    """The plan's usual pool size (for the derived action cost): the workers the SLO needs
    at the median demand of the windows that have any (closed hours excluded)."""
    busy = sorted(d for d in demand if d > 0)
    if not busy:
        return 1.0
    terms = slo_terms_from_policy(inp.policy, 0.0)
    need = required_workers(
        busy[len(busy) // 2],
        inp.mean_service_s,
        terms,
        service_scv=inp.service_scv,
        max_workers=SIZING_SEARCH_LIMIT,
    )
    return defaults.typical_workers([need.workers])


POOLED_BISECTIONS = 6  # spending the held surplus: resolution (target − floor) / 64


def _sized_and_scheduled(
    inp: PlanInput,
    demand: list[float],
    extra: list[int],
    sc: ScalingSpec,
) -> tuple[list[WindowNeed], list[RawStep], dict[int, str]]:
    """Window needs and the steps that carry them out.

    Pooled attainment counts what the pool will really have: the scheduler holds levels
    above a window's need (dwell, hysteresis, cooldown, step merging), and those held
    workers raise that window's P(met) beyond what its sizing paid for — a second cushion on
    top of the risk budget. So the budget is spent on the *scheduled* counts: the allocation's
    mean P(met) is lowered (bisection between the window floor and the target) to the
    cheapest plan whose scheduled counts still reach ``target_attainment`` on average.
    ``sc``: the policy's scaling with its derived fields filled in (``defaults``)."""
    policy = inp.policy
    capacity = capacity_fn(inp.mean_service_s, inp.service_scv)

    def plan_at(
        pooled_target: float | None,
    ) -> tuple[list[WindowNeed], list[RawStep], dict[int, str]]:
        needs = window_needs(
            policy,
            now=inp.now,
            window_starts=list(inp.window_starts),
            demand_per_s=demand,
            extra_workers=extra,
            current_backlog=inp.current_backlog,
            mean_service_s=inp.mean_service_s,
            service_scv=inp.service_scv,
            demand_quantile=inp.demand_quantile,
            distribution=inp.demand_distribution,
            pooled_target=pooled_target,
            capacity=capacity,
        )
        raw, holds = schedule_steps(
            [w.needed_workers for w in needs],
            list(inp.window_starts),
            now=inp.now,
            current_workers=inp.current_workers,
            scaling=sc,
            last_scale_at=inp.last_scale_at,
        )
        return needs, raw, holds

    best = plan_at(None)
    dist, target = inp.demand_distribution, defaults.target_attainment(policy)
    if dist is None or target is None or best[0][0].met_probability is None:
        return best

    def scheduled(raw: list[RawStep]) -> list[int]:
        return [commanded_at(t, inp.current_workers, raw) for t in inp.window_starts]

    def attainment(plan: tuple[list[WindowNeed], list[RawStep], dict[int, str]]) -> float:
        ps = met_probabilities(
            policy,
            plan[0],
            scheduled(plan[1]),
            dist,
            current_backlog=inp.current_backlog,
            mean_service_s=inp.mean_service_s,
            service_scv=inp.service_scv,
            capacity=capacity,
        )
        busy = dist.busy  # closed windows (certain) do not count (issue 22)
        return float(np.mean(np.asarray(ps)[busy])) if busy.any() else 1.0

    if attainment(best) <= target + 1e-9:
        return best
    best_cost = sum(scheduled(best[1]))
    lo, hi = window_floor(target), float(target)
    for _ in range(POOLED_BISECTIONS):
        mid = 0.5 * (lo + hi)
        cand = plan_at(mid)
        if attainment(cand) >= target - 1e-9:
            hi = mid
            cost = sum(scheduled(cand[1]))
            if cost <= best_cost:
                best, best_cost = cand, cost
        else:
            lo = mid
    return best


def commanded_at(
    t: datetime, current: int, steps: Sequence[PlannedStep] | Sequence[RawStep]
) -> int:
    """The count commanded at ``t``: the last step executed by then, else ``current``."""
    n = current
    for s in steps:
        if s.execute_at <= t:
            n = s.to_workers
    return n


def _slo_reasons(needs: list[WindowNeed], policy: ScalingPolicy) -> tuple[list[str], bool]:
    reasons: list[str] = []
    capped = [w for w in needs if w.capped_by is not None]
    if not capped:
        return reasons, True
    worst = max(capped, key=lambda w: w.wanted_workers - w.needed_workers)
    by = worst.capped_by
    if by == "budget":
        limit = (
            f"budget cap of {budget_cap_workers(policy)} workers "
            f"(budget_per_hour {policy.scaling.budget_per_hour} / worker_hour "
            f"{policy.cost.worker_hour})"
        )
    else:
        limit = f"max_workers {policy.scaling.max_workers}"
    reasons.append(
        f"SLO not achievable: {limit} is below the {worst.wanted_workers} workers the SLO "
        f"(with margin) needs at {worst.start.isoformat()} "
        f"({len(capped)} of {len(needs)} window(s) capped)"
    )
    return reasons, False


def _auto_limits(
    inp: PlanInput, schedule: list[tuple[datetime, int]], steps: list[PlannedStep]
) -> tuple[bool, list[str]]:
    reasons: list[str] = []
    if inp.anomaly:
        what = f" ({inp.anomaly_note})" if inp.anomaly_note else ""
        reasons.append(f"recent demand anomaly{what}: auto approval downgraded to manual")
    if inp.data_quality_warning:
        reasons.append("data-quality warning: auto approval downgraded to manual")
    counts = [n for _, n in schedule] + [s.to_workers for s in steps]
    change = max(abs(n - inp.current_workers) for n in counts)
    limit = inp.policy.scaling.auto_max_change
    if change > limit:
        reasons.append(
            f"change of {change} workers exceeds auto_max_change {limit}: "
            "auto approval downgraded to manual"
        )
    return inp.policy.mode == Mode.AUTO and not reasons, reasons


def _planned(s: RawStep, needs: list[WindowNeed], startup_s: float) -> PlannedStep:
    w = needs[s.window_index]
    # how long after the window start the new workers are ready (startup included)
    late_by_s = (
        max(0.0, (s.execute_at - w.start).total_seconds() + startup_s)
        if s.direction == "up"
        else 0.0
    )
    constraints = list(w.constraints) + list(s.adjustments)
    explanation: dict[str, Any] = {
        "direction": s.direction,
        "window_start": w.start,
        "window_index": w.index,
        "demand_per_s": w.demand_per_s,
        "demand_quantile": w.demand_quantile,
        "safety_margin": w.safety_margin,
        "arrival_rate_per_s": w.arrival_rate_per_s,
        "model_workers": w.model_workers,
        "margin_workers": w.margin_workers,
        "extra_workers": w.extra_workers,
        "wanted_workers": w.wanted_workers,
        "needed_workers": w.needed_workers,
        "binding_term": w.binding_term,
        "covers_windows": [needs[j].start for j in s.covers],
        "constraints": constraints,
        "startup_lead_s": startup_s if s.direction == "up" else 0.0,
        "late_by_s": late_by_s,
        "attainment_mode": w.attainment_mode,
        "met_probability": w.met_probability,
    }
    verb = "scale up" if s.direction == "up" else "scale down"
    text = (
        f"{verb} {s.from_workers}→{s.to_workers} for window {w.start:%Y-%m-%d %H:%M}: "
        f"demand {w.demand_per_s:.3g} jobs/s (q{w.demand_quantile:g}) needs "
        f"{w.model_workers} workers, "
    )
    if w.met_probability is not None:
        text += (
            f"{w.margin_workers:+d} pooled risk budget (P(met) "
            f"{w.met_probability:.3f}), +{w.extra_workers} extra"
        )
    else:
        text += f"+{w.margin_workers} margin, +{w.extra_workers} extra"
    if constraints:
        text += "; " + ", ".join(constraint_text(c) for c in constraints)
    if s.direction == "up" and startup_s and late_by_s == 0:
        text += f"; executed {startup_s:g} s ahead for startup"
    if late_by_s > 0:
        text += f"; workers ready {late_by_s:.0f} s after the window starts"
    return PlannedStep(s.execute_at, s.from_workers, s.to_workers, text, explanation)


def _window_row(w: WindowNeed, scheduled: int, hold: str | None) -> dict[str, Any]:
    constraints = [constraint_text(c) for c in w.constraints]
    if scheduled > w.needed_workers and hold:
        constraints.append(f"{hold.split(':')[0]} +{scheduled - w.needed_workers}")
    return {
        "window_start": w.start,
        "demand_per_s": w.demand_per_s,
        "demand_quantile": w.demand_quantile,
        "safety_margin": w.safety_margin,
        "arrival_rate_per_s": w.arrival_rate_per_s,
        "model_workers": w.model_workers,
        "margin_workers": w.margin_workers,
        "extra_workers": w.extra_workers,
        "wanted_workers": w.wanted_workers,
        "needed_workers": w.needed_workers,
        "scheduled_workers": scheduled,
        "binding_term": w.binding_term,
        "constraints": "; ".join(constraints),
        "note": hold or "",
        "attainment_mode": w.attainment_mode,
        "met_probability": w.met_probability,
    }
