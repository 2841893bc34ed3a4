"""Good defaults: what a policy that states only its SLO and bounds plans with (issue 22).

A field left unset (``None`` in the policy) is derived here, so the calm, budgeted sizing is
what a policy gets without tuning; any field a policy sets is an expert override and is used
as written.

- **attainment target** (``slo.target_attainment``): the share of windows that must meet the
  SLO, ``max(DEFAULT_ATTAINMENT, slo.wait_quantile)`` (at most ``MAX_DERIVED_ATTAINMENT``):
  the goal of 99 % of windows, or the SLO's own quantile when that is stricter. Spent as a
  pooled risk budget (``slo.attainment_mode`` unset: ``pooled``). The older rule (each window
  at ``forecast.demand_quantile`` × (1 + ``scaling.safety_margin``)) applies only when a policy
  sets one of those two fields and no target.
- **cost of a scaling action** (``scaling.action_cost_worker_hours``): ``ACTION_COST_MINUTES``
  of the pool, i.e. the typical count of the plan's windows with demand × 5/60 worker-hours
  (issue 15's rule of thumb, chosen on Taylor's weeks of 24 Jul and 21 Aug; docs/backtest.md).
- **dwell** (``scaling.min_dwell_seconds``): ``DWELL_WINDOWS`` planning windows, at least
  ``MIN_DWELL_S`` (30 min at 15-min windows, 1 h at 30-min windows). The hysteresis
  (``scale_down_windows``) is already counted in windows.
- **max step** (``scaling.max_step``): the schema's default is no limit beyond min/max
  workers; startup lead and the cooldown already pace a large change.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from capplan_core.policy import ScalingPolicy, ScalingSpec, SloSpec

DEFAULT_ATTAINMENT = 0.99
MAX_DERIVED_ATTAINMENT = 0.999
ACTION_COST_MINUTES = 5.0
DWELL_WINDOWS = 2
MIN_DWELL_S = 1800.0
LEGACY_DEMAND_QUANTILE = 0.9
LEGACY_SAFETY_MARGIN = 0.1


def derived_target(slo: SloSpec) -> float:
    """The attainment target an SLO without ``target_attainment`` gets."""
    return min(MAX_DERIVED_ATTAINMENT, max(DEFAULT_ATTAINMENT, float(slo.wait_quantile)))


def uses_legacy_sizing(policy: ScalingPolicy) -> bool:
    """No target, and the policy sets ``demand_quantile`` or ``safety_margin``: each window is
    sized to that quantile × (1 + margin), as before issue 22."""
    return policy.slo.target_attainment is None and (
        policy.forecast.demand_quantile is not None or policy.scaling.safety_margin is not None
    )


def target_attainment(policy: ScalingPolicy) -> float | None:
    """The share of windows the plan aims to meet (set or derived); None under legacy sizing."""
    if policy.slo.target_attainment is not None:
        return float(policy.slo.target_attainment)
    return None if uses_legacy_sizing(policy) else derived_target(policy.slo)


def attainment_mode(policy: ScalingPolicy) -> str:
    """``per_window`` or ``pooled``: as set, else pooled wherever there is a target."""
    if policy.slo.attainment_mode is not None:
        return policy.slo.attainment_mode
    return "pooled" if target_attainment(policy) is not None else "per_window"


def demand_quantile(policy: ScalingPolicy) -> float:
    """The legacy sizing quantile (``forecast.demand_quantile``, default 0.9)."""
    q = policy.forecast.demand_quantile
    return LEGACY_DEMAND_QUANTILE if q is None else float(q)


def safety_margin(policy: ScalingPolicy) -> float:
    """The legacy safety margin (``scaling.safety_margin``, default 0.1)."""
    m = policy.scaling.safety_margin
    return LEGACY_SAFETY_MARGIN if m is None else float(m)


def dwell_seconds(policy: ScalingPolicy) -> float:
    """``scaling.min_dwell_seconds``, else ``DWELL_WINDOWS`` windows (at least 30 min)."""
    d = policy.scaling.min_dwell_seconds
    if d is not None:
        return float(d)
    return max(MIN_DWELL_S, DWELL_WINDOWS * policy.forecast.interval_minutes * 60.0)


def typical_workers(needs: Sequence[float]) -> float:
    """The pool's usual size over a plan: the median count of windows that need workers
    (closed hours do not make an action cheaper), at least 1."""
    busy = sorted(float(n) for n in needs if n > 0)
    return max(1.0, busy[len(busy) // 2]) if busy else 1.0


def action_cost(policy: ScalingPolicy, typical: float) -> float:
    """``scaling.action_cost_worker_hours``, else ``ACTION_COST_MINUTES`` of ``typical``
    workers (worker-hours)."""
    c = policy.scaling.action_cost_worker_hours
    if c is not None:
        return float(c)
    return round(max(1.0, typical) * ACTION_COST_MINUTES / 60.0, 4)


def resolved_scaling(policy: ScalingPolicy, typical: float) -> ScalingSpec:
    """The policy's scaling section with every derived field filled in (for the scheduler)."""
    return policy.scaling.model_copy(
        update={
            "min_dwell_seconds": dwell_seconds(policy),
            "action_cost_worker_hours": action_cost(policy, typical),
            "safety_margin": safety_margin(policy),
        }
    )


def described(policy: ScalingPolicy, typical: float) -> dict[str, object]:
    """What a plan stands on: each derived value and whether the policy set it."""
    sc = policy.scaling
    target = target_attainment(policy)
    return {
        "target_attainment": target,
        "target_attainment_from": "policy"
        if policy.slo.target_attainment is not None
        else (
            "legacy demand_quantile x (1 + safety_margin)"
            if target is None
            else f"derived: max({DEFAULT_ATTAINMENT}, slo.wait_quantile)"
        ),
        "attainment_mode": attainment_mode(policy),
        "action_cost_worker_hours": action_cost(policy, typical),
        "action_cost_from": "policy"
        if sc.action_cost_worker_hours is not None
        else f"derived: {ACTION_COST_MINUTES:g} min of the typical {math.ceil(typical)} workers",
        "min_dwell_seconds": dwell_seconds(policy),
        "min_dwell_from": "policy"
        if sc.min_dwell_seconds is not None
        else f"derived: {DWELL_WINDOWS} windows, at least {MIN_DWELL_S:g} s",
    }
