"""What a planning cycle says about one queue, typed: :class:`QueueResult` and its JSON form.

Every path that reports a queue — a stored plan read back (``plans show``, ``plans list``), a
cycle's result (``capplan plan --json``, the flows' return values, the artifacts), a preview
that stores nothing, a queue that failed — builds a :class:`QueueResult`, and its JSON form is
written in one place (:meth:`QueueResult.to_json`). What the CLI prints is
:meth:`QueueResult.public_json`: the documented keys only (docs/CONTRACTS.md), so internal
details (``details``, ``explanation``) never leak into a user's script by accident.

The JSON form is the contract: the keys, their order and which are present are exactly those
the CLI and the flows have always returned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from capplan_core.engine_labels import engine_label
from capplan_core.planning.stored_plan import SimulationFigures, StoredPlan


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


@dataclass(frozen=True)
class StepView:
    """One step as users see it."""

    execute_at: str
    from_workers: int
    to_workers: int
    reason: str
    status: str

    def to_json(self) -> dict[str, Any]:
        return {
            "execute_at": self.execute_at,
            "from_workers": self.from_workers,
            "to_workers": self.to_workers,
            "reason": self.reason,
            "status": self.status,
        }


def simulation_json(sim: SimulationFigures) -> dict[str, Any]:
    """The Monte Carlo proof of a plan, as users see it (a shared pool's: each queue's
    simulated waits too, under ``classes``)."""
    out = {
        "slo_achievement_rate": sim.slo_achievement_rate,
        "max_backlog": sim.max_backlog,
        "p95_wait_s": sim.p95_wait_s,
        "utilization_range": list(sim.utilization_range),
        "replications": sim.replications,
        "engine": sim.engine,
        "approximate": sim.engine == "fluid",
        "proved_by": engine_label(sim.engine),
    }
    classes = (sim.details or {}).get("classes")
    if classes:
        out["classes"] = classes
    return out


@dataclass(frozen=True)
class DecisionView:
    """Who decided a plan, when, and what they said."""

    by: str
    comment: str | None
    at: str | None

    def to_json(self) -> dict[str, Any]:
        return {"by": self.by, "comment": self.comment, "at": self.at}


#: the keys ``capplan plan --json`` prints, in order (docs/CONTRACTS.md)
PUBLIC_KEYS = (
    "id",
    "queue",
    "policy",
    "policy_version",
    "mode",
    "status",
    "current_workers",
    "target_workers",
    "confidence",
    "slo_achievable",
    "steps",
    "simulation",
    "skipped_reason",
    "decision",
    "note",
    "error",
    "expires_at",
    "as_of",
)


@dataclass(frozen=True)
class QueueResult:
    """One queue's outcome: a plan (stored or previewed, planned or skipped) or a failure.

    ``failed_stage``/``error`` are set on a failure, which has no plan fields (``plan`` is
    false); ``details``/``explanation`` are set on a cycle's result (the artifacts read them)
    and absent from a stored plan read back for ``plans show``."""

    queue: str
    policy: str | None
    mode: str
    status: str
    plan: bool = True
    id: int | None = None
    policy_version: int | None = None
    current_workers: int | None = None
    target_workers: int | None = None
    confidence: float | None = None
    slo_achievable: bool | None = None
    created_at: str | None = None
    as_of: str | None = None
    expires_at: str | None = None
    steps: tuple[StepView, ...] = ()
    simulation: SimulationFigures | None = None
    skipped_reason: str | None = None
    decision: DecisionView | None = None
    failed_stage: str | None = None
    error: str | None = None
    note: str | None = None
    details: Mapping[str, Any] | None = None
    explanation: Sequence[Mapping[str, Any]] | None = field(default=None)

    # -- building ------------------------------------------------------------------------------
    @classmethod
    def from_plan(cls, plan: StoredPlan) -> QueueResult:
        """A stored (or previewed) plan as users see it."""
        return cls(
            queue=plan.queue,
            policy=plan.policy_name,
            mode=plan.mode,
            status=plan.status,
            id=plan.id,
            policy_version=plan.details.get("policy_version"),
            current_workers=plan.current_workers,
            target_workers=plan.target_workers,
            confidence=plan.confidence,
            slo_achievable=plan.slo_achievable,
            created_at=_iso(plan.created_at),
            as_of=_iso(plan.as_of),
            expires_at=_iso(plan.expires_at),
            steps=tuple(
                StepView(_iso(s.execute_at) or "", s.from_workers, s.to_workers, s.reason, s.status)
                for s in plan.steps
            ),
            simulation=plan.simulation,
            skipped_reason=plan.skipped_reason or None,
            decision=DecisionView(plan.decided_by, plan.decision_comment, _iso(plan.decided_at))
            if plan.decided_by
            else None,
        )

    @classmethod
    def failure(
        cls, *, queue: str, policy: str, mode: str, error: str, failed_stage: str | None = None
    ) -> QueueResult:
        """A queue whose pipeline failed (the cycle goes on with the others)."""
        return cls(
            queue=queue,
            policy=policy,
            mode=mode,
            status="failed",
            plan=False,
            failed_stage=failed_stage,
            error=error,
        )

    def with_view(
        self,
        details: Mapping[str, Any],
        explanation: Sequence[Mapping[str, Any]],
        note: str | None = None,
    ) -> QueueResult:
        """This result with what a cycle reports besides the plan (artifacts read it)."""
        return replace(self, details=details, explanation=explanation, note=note or None)

    def as_preview(self, *, skipped: bool) -> QueueResult:
        """A plan built in memory: no id, status ``preview`` (or ``skipped``)."""
        return replace(self, id=None, status="skipped" if skipped else "preview")

    # -- the JSON form -----------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The whole result, as the flows return it and the artifacts read it."""
        if not self.plan:
            out: dict[str, Any] = {
                "queue": self.queue,
                "policy": self.policy,
                "mode": self.mode,
                "status": self.status,
            }
            if self.failed_stage is not None:
                out["failed_stage"] = self.failed_stage
            out["error"] = self.error
            return out
        out = {
            "id": self.id,
            "queue": self.queue,
            "policy": self.policy,
            "policy_version": self.policy_version,
            "mode": self.mode,
            "status": self.status,
            "current_workers": self.current_workers,
            "target_workers": self.target_workers,
            "confidence": self.confidence,
            "slo_achievable": self.slo_achievable,
            "created_at": self.created_at,
            "as_of": self.as_of,
            "expires_at": self.expires_at,
            "steps": [s.to_json() for s in self.steps],
            "simulation": None if self.simulation is None else simulation_json(self.simulation),
        }
        if self.skipped_reason:
            out["skipped_reason"] = self.skipped_reason
        if self.decision is not None:
            out["decision"] = self.decision.to_json()
        if self.details is not None:
            out["details"] = dict(self.details)
        if self.explanation is not None:
            out["explanation"] = [dict(r) for r in self.explanation]
        if self.note:
            out["note"] = self.note
        return out

    def public_json(self) -> dict[str, Any]:
        """What ``capplan plan --json`` prints: :data:`PUBLIC_KEYS` that are present, in that
        order, and the rows cleaning dropped, per column and reason, when there were any."""
        return self.public_of(self.to_json())

    @classmethod
    def public_of(cls, result: Mapping[str, Any]) -> dict[str, Any]:
        """:meth:`public_json` of a result already in its JSON form (a flow's return value,
        which crossed Prefect as JSON): the documented keys, in order."""
        out = {k: result[k] for k in PUBLIC_KEYS if k in result}
        details = result.get("details") or {}
        if "dropped_rows" in details:
            out["dropped_rows"] = details["dropped_rows"]
        return out
