"""Turn a decision into plan drafts for the store, and stored plans into the JSON users read."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from capplan_core.planning.queue_result import QueueResult
from capplan_core.planning.stored_plan import (
    ForecastPoint,
    PlanDraft,
    QualityDraft,
    SimulationDraft,
    StepDraft,
    StoredPlan,
)
from capplan_core.planning.strategy_choice import effective_strategy
from capplan_core.planning.strategy_evidence import Strategy
from capplan_core.policy import ScalingPolicy

if TYPE_CHECKING:
    from capplan_core.forecast import ForecastResult
    from capplan_core.planning.decide import Decision
    from capplan_core.planning.pool_state import QueueState

STORED_FORECAST_LEVEL = 0.8  # the band kept with a plan (re-simulation reads it back)


def _jsonable(v: Any) -> Any:
    import numpy as np  # here, not at import: showing a plan needs no numpy

    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return [_jsonable(x) for x in v.tolist()]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def plan_draft(
    policy: ScalingPolicy,
    decision: Decision,
    forecast: ForecastResult,
    state: QueueState,
    *,
    as_of: datetime,
    quality: dict[str, Any],
    flow_run_id: str | None = None,
    quality_passed: bool | None = None,
    policy_version: int | None = None,
    strategy: tuple[Strategy, str] | None = None,
) -> PlanDraft:
    """The plan to store, with its forecast points and (when ``quality_passed`` is given) its
    data-quality report, so the store writes them all in one transaction. ``strategy`` is the
    strategy the plan carries out and why (:func:`effective_strategy`); default: the policy's,
    and for ``auto`` predictive, with no evidence read."""
    chosen, chosen_why = strategy or effective_strategy(
        policy, None, policy_version=policy_version, now=as_of
    )
    p, sim = decision.proposal, decision.simulation
    expires = getattr(p, "expires_at", None) or as_of + timedelta(
        seconds=policy.scaling.plan_expiry_seconds
    )
    lo, hi = sim.utilization_range
    return PlanDraft(
        policy_name=policy.name,
        queue=policy.queue,
        mode=policy.mode.value,
        current_workers=int(state.current_workers),
        target_workers=int(p.target_workers),
        confidence=decision.confidence,
        slo_achievable=decision.slo_achievable,
        as_of=as_of,
        expires_at=expires,
        flow_run_id=flow_run_id,
        forecast=forecast_points(policy, forecast),
        quality=None
        if quality_passed is None
        else QualityDraft(policy.queue, quality_passed, quality),
        steps=[
            StepDraft(
                execute_at=s.execute_at,
                from_workers=int(s.from_workers),
                to_workers=int(s.to_workers),
                reason=s.reason,
                confidence=decision.confidence,
                explanation=_jsonable(s.explanation),
            )
            for s in p.steps
        ],
        simulation=SimulationDraft(
            slo_achievement_rate=float(sim.slo_achievement_rate),
            max_backlog=float(sim.max_backlog),
            p95_wait_s=float(sim.p95_wait_s),
            utilization_range=(float(lo), float(hi)),
            replications=int(sim.replications),
            engine=str(sim.engine),
            details=_jsonable(
                {
                    "achievement_ci95": getattr(sim, "achievement_ci95", None),
                    "mean_wait_s": getattr(sim, "mean_wait_s", None),
                    "wait_probability": getattr(sim, "wait_probability", None),
                    "window_failure_rate": sim.window_failure_rate,
                    "jobs": sim.jobs,
                    # a shared pool: each queue's simulated waits (empty for one queue)
                    "classes": [
                        {
                            "queue": c.name,
                            "jobs": c.jobs,
                            "slo_wait_s": c.slo_wait_s,
                            "wait_quantile": c.wait_quantile,
                            "wait_quantile_s": c.wait_quantile_s,
                            "mean_wait_s": c.mean_wait_s,
                            "late_share": c.late_share,
                            "slo_achievement_rate": c.slo_achievement_rate,
                        }
                        for c in getattr(sim, "classes", ())
                    ],
                }
            ),
        ),
        details=_jsonable(
            {
                "policy": policy.name,
                "policy_version": policy_version,
                "reasons": decision.reasons,
                "auto_allowed": p.auto_allowed,
                "cost": p.cost,
                "attempts": decision.history,
                "model": forecast.model,
                "forecast_notes": forecast.notes,
                "recent_anomaly": forecast.recent_anomaly,
                "selection": forecast.selection,
                "state": state.details(),
                "schedule": [(t, w) for t, w in p.schedule],
                "quality_warnings": [
                    c["message"]
                    for c in quality.get("checks", [])
                    if not c["success"] and c["severity"] == "warning"
                ],
                "dropped_rows": quality.get("dropped_rows", []),
                "settings": p.settings,
                "strategy": chosen,
                "strategy_why": chosen_why,
            }
        ),
    )


def skipped_draft(
    policy: ScalingPolicy,
    reason: str,
    *,
    as_of: datetime,
    quality: dict[str, Any] | None = None,
    flow_run_id: str | None = None,
    policy_version: int | None = None,
) -> PlanDraft:
    """A skipped plan (holds current capacity); its failed quality report, if any, with it."""
    return PlanDraft(
        policy_name=policy.name,
        queue=policy.queue,
        mode=policy.mode.value,
        current_workers=None,
        target_workers=None,
        confidence=None,
        slo_achievable=None,
        as_of=as_of,
        skipped_reason=reason,
        flow_run_id=flow_run_id,
        quality=None if quality is None else QualityDraft(policy.queue, False, quality),
        details=_jsonable(
            {
                "policy": policy.name,
                "policy_version": policy_version,
                "quality": quality or {},
                "dropped_rows": (quality or {}).get("dropped_rows", []),
            }
        ),
    )


def forecast_points(
    policy: ScalingPolicy, forecast: ForecastResult, level: float = STORED_FORECAST_LEVEL
) -> list[ForecastPoint]:
    """The forecast a plan keeps: per window, the mean rate and the band at ``level``."""
    lower, upper = forecast.bounds[level]
    return [
        ForecastPoint(
            queue_name=policy.queue,
            forecast_time=t.to_pydatetime(),
            predicted_rate=float(m),
            confidence_lower=float(lo),
            confidence_upper=float(hi),
            level=level,
            model=forecast.model,
        )
        for t, m, lo, hi in zip(forecast.timestamps, forecast.mean, lower, upper, strict=True)
    ]


def plan_summary(plan: StoredPlan) -> dict[str, Any]:
    """The domain-named JSON of a stored plan (``plan --json``, ``plans show --json``):
    :meth:`QueueResult.from_plan`'s JSON form."""
    return QueueResult.from_plan(plan).to_json()
