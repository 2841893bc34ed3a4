"""When may a plan be approved without a person? (policy mode ``auto``)."""

from __future__ import annotations

from capplan_core.planning.decide import Decision
from capplan_core.policy import ScalingPolicy


def auto_approval(policy: ScalingPolicy, decision: Decision, current_workers: int) -> tuple[
        bool, str]:
    """(allowed, reason). Auto approval needs: the planner's own auto limits (no recent anomaly,
    no data-quality warning), an achievable SLO at or above the confidence threshold, and a
    change no larger than ``scaling.auto_max_change`` workers."""
    p = decision.proposal
    threshold = policy.scaling.confidence_threshold
    change = abs(int(p.target_workers) - int(current_workers))
    if not p.auto_allowed:
        why = "; ".join(r for r in p.reasons if "auto" in r.lower()) or "planner disallowed auto"
        return False, f"auto limits: {why}"
    if not decision.slo_achievable:
        return False, "auto limits: the SLO is not achievable with this plan"
    if decision.confidence < threshold:
        return False, (f"auto limits: confidence {decision.confidence:.2f} below "
                       f"threshold {threshold:.2f}")
    if change > policy.scaling.auto_max_change:
        return False, (f"auto limits: change of {change} workers exceeds auto_max_change "
                       f"{policy.scaling.auto_max_change}")
    return True, (f"auto-approved: confidence {decision.confidence:.2f} >= {threshold:.2f}, "
                  f"change {change} <= {policy.scaling.auto_max_change}")
