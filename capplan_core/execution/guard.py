"""The pre-write guard: may this scaling step be applied now? Pure, no I/O.

The apply-step flow reads the live replica count through a ``Scaler``, calls
:func:`check_step`, and patches only on ``GuardAction.APPLY``. Every other decision carries a
reason worth writing to the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from capplan_core.policy import ScalingPolicy
from capplan_core.utc import utc_datetime


class GuardAction(StrEnum):
    APPLY = "apply"
    NOOP_ALREADY_APPLIED = "noop-already-applied"
    REFUSE_DRIFT = "refuse-drift"
    REFUSE_COOLDOWN = "refuse-cooldown"
    REFUSE_MAX_STEP = "refuse-max-step"
    REFUSE_MAX_WORKERS = "refuse-max-workers"
    REFUSE_MIN_WORKERS = "refuse-min-workers"


class StepLike(Protocol):
    """Anything with a target worker count: ``ScalingStepRow``, ``PlannedStep``."""

    @property
    def to_workers(self) -> int: ...


@dataclass(frozen=True)
class GuardDecision:
    """The guard's verdict. ``retry_after_s`` is set for a cooldown refusal."""

    action: GuardAction
    reason: str
    live_replicas: int
    to_replicas: int
    retry_after_s: float | None = None

    @property
    def should_apply(self) -> bool:
        """True only for ``APPLY``: the caller may send the patch."""
        return self.action is GuardAction.APPLY

    @property
    def refused(self) -> bool:
        return self.action.value.startswith("refuse-")


def check_step(
    step: StepLike,
    live_replicas: int,
    expected_from: int,
    last_applied_at: datetime | None,
    now: datetime,
    policy: ScalingPolicy,
    *,
    max_workers: int | None = None,
    drift_tolerance: int = 0,
) -> GuardDecision:
    """Decide whether ``step`` may move the target from ``live_replicas`` now.

    Checks, in order: already at the target (no-op, so a re-run never writes twice); the
    policy's ``min_workers``/``max_workers`` (and an approver's lower ``max_workers``); drift —
    the live count differs from ``expected_from`` (the count the plan assumed) by more than
    ``drift_tolerance`` workers, so someone else scaled it; the policy's ``max_step``; the
    policy's ``cooldown_seconds`` since ``last_applied_at`` (the last scaling write to this
    target). Naive datetimes are taken as UTC.
    """
    to = int(step.to_workers)
    sc = policy.scaling

    def verdict(
        action: GuardAction, reason: str, retry_after_s: float | None = None
    ) -> GuardDecision:
        return GuardDecision(action, reason, live_replicas, to, retry_after_s)

    if to == live_replicas:
        return verdict(
            GuardAction.NOOP_ALREADY_APPLIED,
            f"live replicas already {live_replicas}; nothing to do",
        )
    ceiling = sc.max_workers if max_workers is None else min(sc.max_workers, max_workers)
    if to > ceiling:
        src = "approved limit" if ceiling != sc.max_workers else "policy max_workers"
        return verdict(GuardAction.REFUSE_MAX_WORKERS, f"target {to} exceeds the {src} {ceiling}")
    if to < sc.min_workers:
        return verdict(
            GuardAction.REFUSE_MIN_WORKERS,
            f"target {to} is below policy min_workers {sc.min_workers}",
        )
    if abs(live_replicas - expected_from) > drift_tolerance:
        return verdict(
            GuardAction.REFUSE_DRIFT,
            f"live replicas {live_replicas} differ from the {expected_from} the plan "
            f"expected (tolerance {drift_tolerance}); someone else scaled it — re-plan",
        )
    change = abs(to - live_replicas)
    if change > sc.max_step:
        return verdict(
            GuardAction.REFUSE_MAX_STEP,
            f"change {live_replicas} -> {to} ({change} workers) exceeds policy "
            f"max_step {sc.max_step}",
        )
    if last_applied_at is not None:
        since_s = (utc_datetime(now) - utc_datetime(last_applied_at)).total_seconds()
        if since_s < sc.cooldown_seconds:
            wait_s = sc.cooldown_seconds - since_s
            return verdict(
                GuardAction.REFUSE_COOLDOWN,
                f"last scaling {since_s:.0f} s ago, cooldown is "
                f"{sc.cooldown_seconds:.0f} s; retry in {wait_s:.0f} s",
                wait_s,
            )
    return verdict(GuardAction.APPLY, f"scale {live_replicas} -> {to}")
