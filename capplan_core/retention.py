"""Retention: how long plans, metrics, audit rows and Prefect's flow runs are kept (pure).

The limits (:class:`RetentionLimits`, days) come from the settings (``CAPPLAN_*_RETENTION_DAYS``);
:func:`cutoffs` turns them into instants for a given ``now``; :func:`plan_keep_reason` is the
one rule deciding whether an old plan may go. The store applies it
(:mod:`capplan_adapters.store.retention_repo`); the ``prune`` flow and ``capplan db prune`` call
the store and, for Prefect's runs, the Prefect client.

A plan older than its limit is still kept while it matters to a running system:

* it is ``proposed``, ``approved`` or ``applied`` (awaiting a decision, or the queue's live
  plan: at most one of each per queue, so these are bounded);
* one of its steps is still open (``pending``, ``claimed`` or ``applying``);
* it is its queue's newest plan (what ``capplan plans list`` and the planner's "only the
  newest plan can be approved" rule read);
* it holds its queue's most recently applied step (the dry-run scaler's live count).

Audit rows are kept longer than plans: a pruned plan's audit rows stay, with its id in
``details["plan_id"]``, until the audit limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from capplan_core.planning.stored_plan import STEP_FINAL, PlanStatus, StepStatus
from capplan_core.utc import utc_datetime

#: shortest limit of any kind (days): a shorter one would prune what a cycle still reads
MIN_DAYS = 1.0
#: longest limit (days): beyond it ``now - limit`` may not be a date
MAX_DAYS = 36_500.0
#: statuses a plan is kept in whatever its age (bounded: one of each per queue at most)
KEEP_STATUSES = frozenset({PlanStatus.PROPOSED, PlanStatus.APPROVED, PlanStatus.APPLIED})


class RetentionError(ValueError):
    """A retention limit out of bounds (the message names the field and the value)."""


@dataclass(frozen=True)
class RetentionLimits:
    """How many days each kind of record is kept.

    Attributes:
        plans_days: plans with their steps, simulation results and forecast points, and
            data-quality reports.
        audit_days: audit rows; at least ``plans_days`` (kept longer than plans).
        metrics_days: ``queue_metrics`` rows.
        flow_runs_days: Prefect's finished flow runs (by end time).

    Raises:
        RetentionError: a limit that is not a number in [1, 36500] days, or audit rows kept
            for less time than plans.
    """

    plans_days: float = 30.0
    audit_days: float = 365.0
    metrics_days: float = 35.0
    flow_runs_days: float = 14.0

    def __post_init__(self) -> None:
        for name in ("plans_days", "audit_days", "metrics_days", "flow_runs_days"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or not MIN_DAYS <= value <= MAX_DAYS
            ):
                raise RetentionError(
                    f"{name}: must be a number of days in [{MIN_DAYS:g}, "
                    f"{MAX_DAYS:g}] (got {value!r})"
                )
        if self.audit_days < self.plans_days:
            raise RetentionError(
                f"audit_days ({self.audit_days:g}) must be >= plans_days "
                f"({self.plans_days:g}): audit rows outlive their plans"
            )


@dataclass(frozen=True)
class Cutoffs:
    """Records older than these instants (UTC) may be pruned."""

    plans: datetime
    audit: datetime
    metrics: datetime
    flow_runs: datetime

    def as_dict(self) -> dict[str, str]:
        return {k: getattr(self, k).isoformat() for k in ("plans", "audit", "metrics", "flow_runs")}


def cutoffs(now: datetime, limits: RetentionLimits) -> Cutoffs:
    """The instants before which each kind of record may go, at ``now`` (UTC-aware)."""
    now = utc_datetime(now)
    return Cutoffs(
        plans=now - timedelta(days=limits.plans_days),
        audit=now - timedelta(days=limits.audit_days),
        metrics=now - timedelta(days=limits.metrics_days),
        flow_runs=now - timedelta(days=limits.flow_runs_days),
    )


@dataclass(frozen=True)
class PlanFacts:
    """What the keep rule needs to know about one stored plan."""

    plan_id: int
    queue: str
    status: str
    created_at: datetime
    open_steps: int = 0
    newest_of_queue: bool = False
    holds_last_scale: bool = False


def plan_keep_reason(plan: PlanFacts, older_than: datetime) -> str | None:
    """Why ``plan`` must be kept, or None when it may be pruned (``created_at`` before
    ``older_than`` and none of the reasons in the module docstring)."""
    if utc_datetime(plan.created_at) >= utc_datetime(older_than):
        return "younger than the plan limit"
    if plan.status in KEEP_STATUSES:
        return f"still {plan.status}"
    if plan.open_steps:
        return f"{plan.open_steps} open step(s)"
    if plan.newest_of_queue:
        return f"the newest plan of queue {plan.queue!r}"
    if plan.holds_last_scale:
        return f"holds the last applied step of queue {plan.queue!r}"
    return None


#: step statuses that are still open (a run may yet act on them)
OPEN_STEP_STATUSES = tuple(s.value for s in StepStatus if s not in STEP_FINAL)


@dataclass
class PruneReport:
    """How many records a prune removed (or, with ``dry_run``, would remove)."""

    dry_run: bool
    cutoffs: Cutoffs
    plans: int = 0
    steps: int = 0
    simulations: int = 0
    forecast_points: int = 0
    quality_reports: int = 0
    audit_events: int = 0
    queue_metrics: int = 0
    plans_kept_old: int = 0  # older than the limit, kept by plan_keep_reason

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ``pruned`` holds the counts deleted (with ``dry_run``: to delete)."""
        return {
            "dry_run": self.dry_run,
            "cutoffs": self.cutoffs.as_dict(),
            "pruned": {
                "plans": self.plans,
                "steps": self.steps,
                "simulations": self.simulations,
                "forecast_points": self.forecast_points,
                "quality_reports": self.quality_reports,
                "audit_events": self.audit_events,
                "queue_metrics": self.queue_metrics,
            },
            "plans_kept_old": self.plans_kept_old,
        }
