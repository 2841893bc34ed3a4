"""An in-memory :class:`~capplan_core.planning.repository.PlanRepository` for unit tests.

Same behaviour as the SQL store (state machine, supersede on approval, step written once,
audit on every change), no database. Not thread-safe; one process only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from capplan_core.planning.stored_plan import (
    CANCELS_STEPS,
    DECISIONS,
    LIVE,
    AuditEntry,
    ForecastPoint,
    PlanDraft,
    PlanStatus,
    StepStatus,
    StoredPlan,
    StoredSimulation,
    StoredStep,
    check_transition,
)
from capplan_core.policy import ScalingPolicy

if TYPE_CHECKING:
    from capplan_core.planning.repository import PlanRepository
from capplan_core.store.errors import DecisionConflict, StoreError


class InMemoryPlanStore:
    """Plans, steps, audit entries, forecasts and policies in dictionaries."""

    def __init__(self, clock: Any = None) -> None:
        self._now = clock or (lambda: datetime.now(UTC))
        self.policies: dict[str, ScalingPolicy] = {}
        self.plans: dict[int, StoredPlan] = {}
        self.events: list[AuditEntry] = []
        self.forecasts: dict[int | None, list[ForecastPoint]] = {}
        self.quality_reports: list[tuple[str, bool, dict[str, Any]]] = []
        self._next_step_id = 1

    # -- policies
    def upsert_policies(self, policies: Iterable[ScalingPolicy]) -> dict[str, int]:
        for p in policies:
            self.policies[p.name] = p
        names = list(self.policies)
        return {p: names.index(p) + 1 for p in names}

    def get_policy(self, name: str) -> ScalingPolicy:
        if name not in self.policies:
            raise StoreError(f"no policy named {name!r}")
        return self.policies[name]

    # -- plans
    def create_plan(self, draft: PlanDraft) -> int:
        if draft.policy_name not in self.policies:
            raise StoreError(f"no policy named {draft.policy_name!r}; upsert policies first")
        plan_id = len(self.plans) + 1
        steps = []
        for i, st in enumerate(draft.steps):
            steps.append(StoredStep(
                id=self._next_step_id, plan_id=plan_id, seq=i, execute_at=st.execute_at,
                from_workers=st.from_workers, to_workers=st.to_workers, reason=st.reason,
                confidence=st.confidence, status=StepStatus.PENDING, applied_at=None,
                explanation=dict(st.explanation)))
            self._next_step_id += 1
        sim = draft.simulation
        self.plans[plan_id] = StoredPlan(
            id=plan_id, queue=draft.queue, mode=draft.mode,
            status=PlanStatus.SKIPPED if draft.skipped_reason else PlanStatus.PROPOSED,
            current_workers=draft.current_workers, target_workers=draft.target_workers,
            confidence=draft.confidence, slo_achievable=draft.slo_achievable,
            created_at=self._now(), as_of=draft.as_of, expires_at=draft.expires_at,
            flow_run_id=draft.flow_run_id, decided_by=None, decided_at=None,
            decision_comment=None, skipped_reason=draft.skipped_reason,
            details=dict(draft.details), steps=tuple(steps),
            simulation=None if sim is None else StoredSimulation(
                sim.slo_achievement_rate, sim.max_backlog, sim.p95_wait_s,
                sim.utilization_range, sim.replications, sim.engine, dict(sim.details)))
        return plan_id

    def get_plan(self, plan_id: int) -> StoredPlan:
        if plan_id not in self.plans:
            raise StoreError(f"no plan with id {plan_id}")
        return self.plans[plan_id]

    def list_plans(self, *, queue: str | None = None, status: str | None = None,
                   limit: int = 50) -> list[StoredPlan]:
        found = [p for p in reversed(self.plans.values())
                 if (not queue or p.queue == queue) and (not status or p.status == status)]
        return found[:limit]

    def set_flow_run(self, plan_id: int, flow_run_id: str,
                     approval_deadline: datetime | None = None) -> None:
        plan = self.get_plan(plan_id)
        details = plan.details if approval_deadline is None else {
            **plan.details, "approval_deadline": approval_deadline.isoformat()}
        self.plans[plan_id] = replace(plan, flow_run_id=flow_run_id, details=details)

    def transition(self, plan_id: int, to: PlanStatus, *, actor: str,
                   comment: str | None = None,
                   details: dict[str, Any] | None = None) -> StoredPlan:
        plan = self.get_plan(plan_id)
        check_transition(plan_id, plan.status, plan.decided_by, to)
        changed = replace(plan, status=to)
        if to in DECISIONS:
            changed = replace(changed, decided_by=actor, decided_at=self._now(),
                              decision_comment=comment)
        if to in CANCELS_STEPS:
            changed = _cancel_pending(changed)
        if to == PlanStatus.APPROVED:
            for old in list(self.plans.values()):
                if old.queue == plan.queue and old.id != plan.id and old.status in LIVE:
                    self.plans[old.id] = _cancel_pending(replace(old,
                                                                 status=PlanStatus.SUPERSEDED))
                    self.audit("superseded", actor="capplan", plan_id=old.id, queue=old.queue,
                               details={"by_plan": plan.id})
        self.plans[plan_id] = changed
        self.audit(to.value, actor=actor, plan_id=plan_id, queue=plan.queue,
                   details={"comment": comment, **(details or {})})
        return changed

    def plan_for_flow_run(self, flow_run_id: str) -> StoredPlan | None:
        return next((p for p in reversed(self.plans.values())
                     if p.flow_run_id == flow_run_id), None)

    def expire_undecided(self, now: datetime, *, actor: str = "capplan") -> list[int]:
        expired = []
        for plan in self.list_plans(status=PlanStatus.PROPOSED, limit=1000):
            deadline = plan.details.get("approval_deadline")
            if deadline and datetime.fromisoformat(deadline) <= now:
                try:
                    self.transition(plan.id, PlanStatus.EXPIRED, actor=actor,
                                    comment="no decision before the approval deadline")
                except DecisionConflict:
                    continue
                expired.append(plan.id)
        return expired

    def current_plan(self, queue: str) -> StoredPlan | None:
        return next((p for p in reversed(self.plans.values())
                     if p.queue == queue and p.status in LIVE), None)

    # -- steps and audit
    def mark_step(self, step_id: int, status: StepStatus, *, actor: str,
                  details: dict[str, Any]) -> bool:
        plan = next((p for p in self.plans.values() if any(s.id == step_id for s in p.steps)),
                    None)
        if plan is None:
            raise StoreError(f"no step with id {step_id}")
        step = next(s for s in plan.steps if s.id == step_id)
        if step.status != StepStatus.PENDING:
            return False
        steps = tuple(replace(s, status=status, applied_at=self._now()) if s.id == step_id
                      else s for s in plan.steps)
        plan = replace(plan, steps=steps)
        self.audit(f"step_{status.value}", actor=actor, plan_id=plan.id, queue=plan.queue,
                   details={"step_id": step_id, **details})
        if plan.status == PlanStatus.APPROVED and all(
                s.status != StepStatus.PENDING for s in steps):
            plan = replace(plan, status=PlanStatus.APPLIED)
        self.plans[plan.id] = plan
        return True

    def last_scale_at(self, queue: str, *, plan_id: int | None = None) -> datetime | None:
        times = [s.applied_at for p in self.plans.values()
                 if p.queue == queue and (plan_id is None or p.id == plan_id)
                 for s in p.steps if s.status == StepStatus.APPLIED and s.applied_at]
        return max(times, default=None)

    def approval_limits(self, plan_id: int) -> dict[str, Any]:
        for ev in self.audit_events(plan_id=plan_id, action=PlanStatus.APPROVED.value):
            return {k: ev.details.get(k) for k in ("max_workers", "apply_hours")}
        return {}

    def audit(self, action: str, *, actor: str, plan_id: int | None = None,
              queue: str | None = None, details: dict[str, Any] | None = None) -> None:
        self.events.append(AuditEntry(id=len(self.events) + 1, at=self._now(), actor=actor,
                                      action=action, plan_id=plan_id, queue=queue,
                                      details=dict(details or {})))

    def audit_events(self, *, plan_id: int | None = None,
                     action: str | None = None) -> list[AuditEntry]:
        return [e for e in self.events if (plan_id is None or e.plan_id == plan_id)
                and (action is None or e.action == action)]

    # -- forecasts and data quality
    def save_forecast(self, plan_id: int | None, points: Iterable[ForecastPoint]) -> int:
        pts = list(points)
        self.forecasts.setdefault(plan_id, []).extend(pts)
        return len(pts)

    def forecast_points(self, plan_id: int) -> list[ForecastPoint]:
        return sorted(self.forecasts.get(plan_id, []), key=lambda p: p.forecast_time)

    def save_quality_report(self, queue: str, passed: bool, report: dict[str, Any]) -> int:
        self.quality_reports.append((queue, passed, report))
        return len(self.quality_reports)


def _cancel_pending(plan: StoredPlan) -> StoredPlan:
    return replace(plan, steps=tuple(
        replace(s, status=StepStatus.CANCELLED) if s.status == StepStatus.PENDING else s
        for s in plan.steps))


if TYPE_CHECKING:  # mypy checks the fake against the port
    _port: type[PlanRepository] = InMemoryPlanStore
