"""What the policy decides about a new plan before any person is asked.

:func:`policy_verdict` is the whole rule (docs/architecture.md, "approve"):

- a plan that **changes nothing** (no step) is recorded, never paused: there is nothing to
  approve;
- ``advisory``: never executed;
- ``auto`` inside its limits (no recent anomaly, no data-quality warning, a change within
  ``scaling.auto_max_change``) is approved by capplan. When the SLO is out of reach within the
  policy's bounds, it is still approved: the plan is already the best the bounds allow, and
  waiting for a person would leave a pool that is falling behind frozen. An alert says so,
  with the numbers;
- ``auto`` outside its limits: a pool that is **falling behind now** (the first step adds
  workers and is due within the first planning window) gets the part of the scale-up that
  auto may make (up to ``auto_max_change`` more workers) at once, with an alert; otherwise
  the plan falls back to a person, naming the cause, **only when the policy lists
  approvers**; with nobody to ask, the pool is **held** at its current count;
- ``manual`` asks a person when the policy lists approvers, else holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from capplan_core.planning.decide import Decision
from capplan_core.policy import Mode, ScalingPolicy


class Verdict(StrEnum):
    RECORD = "record"  # changes nothing: stored as applied, no approval
    ADVISORY = "advisory"  # never executed
    APPROVE = "approve"  # capplan approves (auto)
    APPROVE_CAPPED = "approve-capped"  # capplan approves up to ``cap`` workers (auto)
    ASK_PERSON = "ask-person"  # wait for an approver
    HOLD = "hold"  # nobody can approve: hold the current count


@dataclass(frozen=True)
class PolicyVerdict:
    """What happens to a new plan, why, and (for an alert) what the SLO shortfall is."""

    verdict: Verdict
    reason: str
    cap: int | None = None  # APPROVE_CAPPED: the most workers auto may command now
    alert: str | None = None  # a pool the plan cannot keep within its SLO


def falling_behind(decision: Decision, now: datetime, window_s: float) -> bool:
    """True when the plan's first step adds workers and is due within one planning window
    of ``now``: the pool needs them now, not later."""
    steps = decision.proposal.steps
    if not steps:
        return False
    first = steps[0]
    return first.to_workers > first.from_workers and first.execute_at <= now + timedelta(
        seconds=window_s
    )


def _auto_problems(policy: ScalingPolicy, decision: Decision) -> list[str]:
    """Why auto may not approve this plan as it is (empty: it may)."""
    return [
        r
        for r in decision.proposal.reasons
        if "auto approval downgraded" in r or "exceeds auto_max_change" in r
    ]


def _slo_alert(policy: ScalingPolicy, decision: Decision) -> str | None:
    """The alert for a plan that cannot meet its SLO within the policy's bounds, or None."""
    threshold = policy.scaling.confidence_threshold
    if decision.slo_achievable and decision.confidence >= threshold:
        return None
    shortfall = [r for r in decision.reasons if r.startswith("SLO not achievable")]
    detail = (
        shortfall[0]
        if shortfall
        else (
            f"confidence {decision.confidence:.2f} is below the threshold {threshold:.2f} after "
            f"{decision.attempts} attempt(s)"
        )
    )
    return (
        f"the SLO cannot be met within the policy's limits ({detail}); applying the "
        f"best the limits allow: {decision.proposal.current_workers} -> "
        f"{decision.proposal.target_workers} workers"
    )


def policy_verdict(policy: ScalingPolicy, decision: Decision, *, now: datetime) -> PolicyVerdict:
    """Decide by policy what happens to a new plan (see the module doc)."""
    p = decision.proposal
    if not p.steps:
        return PolicyVerdict(
            Verdict.RECORD,
            f"changes nothing ({p.current_workers} -> "
            f"{p.current_workers} workers over the horizon): recorded, no "
            "approval needed",
        )
    if policy.mode == Mode.ADVISORY:
        return PolicyVerdict(Verdict.ADVISORY, "advisory: never executed")
    approvers = policy.approval.approvers
    if policy.mode == Mode.MANUAL:
        if approvers:
            return PolicyVerdict(
                Verdict.ASK_PERSON, f"manual policy: waiting for one of {', '.join(approvers)}"
            )
        return PolicyVerdict(
            Verdict.HOLD,
            "manual policy with no approvers "
            "(approval.approvers is empty): nobody can approve it, so the "
            f"pool is held at {p.current_workers} workers",
        )
    alert = _slo_alert(policy, decision)
    problems = _auto_problems(policy, decision)
    change = max(abs(s.to_workers - p.current_workers) for s in p.steps)
    if not problems:
        return PolicyVerdict(
            Verdict.APPROVE,
            f"auto-approved: change {change} <= "
            f"{policy.scaling.auto_max_change}"
            + (
                ""
                if alert
                else f", confidence {decision.confidence:.2f} >= "
                f"{policy.scaling.confidence_threshold:.2f}"
            ),
            alert=alert,
        )
    cause = "; ".join(problems)
    window_s = policy.forecast.interval_minutes * 60.0
    limit = policy.scaling.auto_max_change
    if falling_behind(decision, now, window_s) and limit > 0:
        cap = min(p.target_workers, p.current_workers + limit)
        return PolicyVerdict(
            Verdict.APPROVE_CAPPED,
            f"auto-approved up to {cap} workers (+{cap - p.current_workers}, auto_max_change "
            f"{limit}) because the pool is falling behind now; beyond auto's limits: {cause}",
            cap=cap,
            alert=alert
            or (
                f"the pool needs {p.target_workers} workers and auto may "
                f"add only {limit} at once ({cause})"
            ),
        )
    if approvers:
        return PolicyVerdict(
            Verdict.ASK_PERSON, f"falls back to manual approval: {cause}", alert=alert
        )
    return PolicyVerdict(
        Verdict.HOLD,
        f"held at {p.current_workers} workers: {cause}, and "
        "the policy lists no approvers (approval.approvers) who could "
        "approve it",
        alert=alert,
    )
