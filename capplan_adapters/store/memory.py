"""An in-memory :class:`~capplan_core.planning.repository.PlanRepository` for unit tests.

Same behaviour as the SQL store (state machine, supersede on approval, step written once,
audit on every change), no database. One process only; the step state machine and the target
leases run under a lock, so threads may race on them as they do on the SQL store.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from capplan_core.approval.cap import capped_steps
from capplan_core.planning.expiry import expire_overdue_plans
from capplan_core.planning.policy_versions import (
    PolicyChange,
    PolicyVersion,
    check_policy_set,
    policy_digest,
)
from capplan_core.planning.stored_plan import (
    CANCELS_STEPS,
    DECISIONS,
    LIVE,
    STEP_FINAL,
    STEP_LEASED,
    AuditEntry,
    ForecastPoint,
    PlanDraft,
    PlanStatus,
    StepClaim,
    StepStatus,
    StoredPlan,
    StoredStep,
    as_stored,
    check_approvable,
    check_transition,
    step_may_move,
)
from capplan_core.policy import ScalingPolicy

if TYPE_CHECKING:
    from capplan_core.planning.repository import PlanRepository
from capplan_core.planning.errors import DecisionConflict, StoreError


class InMemoryPlanStore:
    """Plans, steps, audit entries, forecasts and policies in dictionaries."""

    def __init__(self, clock: Any = None) -> None:
        self._now = clock or (lambda: datetime.now(UTC))
        self.policies: dict[str, ScalingPolicy] = {}
        self.versions: dict[str, list[PolicyVersion]] = {}
        self.plans: dict[int, StoredPlan] = {}
        self.events: list[AuditEntry] = []
        self.forecasts: dict[int | None, list[ForecastPoint]] = {}
        self.quality_reports: list[tuple[str, bool, dict[str, Any]]] = []
        self._next_step_id = 1
        self.target_leases: dict[str, tuple[str, datetime]] = {}
        self._lock = threading.RLock()

    # -- policies
    def apply_policies(self, policies: Iterable[ScalingPolicy], *, actor: str,
                       comment: str = "") -> list[PolicyChange]:
        policies = list(policies)
        with self._lock:
            check_policy_set(self.policies.values(), policies)
            return [self._apply_one(p, actor, comment) for p in policies]

    def _apply_one(self, p: ScalingPolicy, actor: str, comment: str) -> PolicyChange:
        history = self.versions.setdefault(p.name, [])
        digest = policy_digest(p)
        if history and history[-1].sha256 == digest:
            return PolicyChange(p.name, history[-1].version, history[-1].version, False)
        previous = history[-1].version if history else None
        version = (previous or 0) + 1
        history.append(PolicyVersion(p.name, version, p, digest, actor, self._now(), comment))
        self.policies[p.name] = p
        superseded = []
        for plan in list(self.plans.values()):
            if plan.policy_name == p.name and plan.status in (PlanStatus.PROPOSED, *LIVE):
                self.plans[plan.id] = _cancel_pending(replace(plan,
                                                              status=PlanStatus.SUPERSEDED))
                self.audit("superseded", actor=actor, plan_id=plan.id, queue=plan.queue,
                           details={"reason": f"policy {p.name!r} changed to version "
                                              f"{version}", "was": plan.status,
                                    "policy_version": version})
                superseded.append(plan.id)
        self.audit("policy_applied", actor=actor, queue=p.queue, details={
            "policy": p.name, "version": version, "previous": previous, "sha256": digest,
            "comment": comment, "superseded_plans": superseded})
        return PolicyChange(p.name, version, previous, True, tuple(superseded))

    def current_policy(self, name: str) -> PolicyVersion:
        if name not in self.versions:
            raise StoreError(f"no policy named {name!r}; apply it first "
                             "(capplan policies apply FILE)")
        return self.versions[name][-1]

    def get_policy(self, name: str) -> ScalingPolicy:
        return self.current_policy(name).policy

    def policy_version(self, name: str, version: int) -> PolicyVersion:
        found = [v for v in self.versions.get(name, []) if v.version == version]
        if not found:
            raise StoreError(f"policy {name!r} has no version {version}")
        return found[0]

    def list_policies(self) -> list[PolicyVersion]:
        return [self.versions[n][-1] for n in sorted(self.versions)]

    def policy_history(self, name: str) -> list[PolicyVersion]:
        if name not in self.versions:
            raise StoreError(f"no policy named {name!r}")
        return list(self.versions[name])

    def policy_for_plan(self, plan: StoredPlan) -> ScalingPolicy:
        if plan.policy_name is None:
            raise StoreError(f"plan {plan.id} names no policy")
        return self.policy_version(plan.policy_name,
                                   int(plan.details.get("policy_version") or 1)).policy

    # -- plans
    def create_plan(self, draft: PlanDraft) -> int:
        if draft.flow_run_id is not None:
            for p in self.plans.values():
                if (p.flow_run_id, p.queue) == (draft.flow_run_id, draft.queue):
                    return p.id
        if draft.policy_name not in self.policies:
            raise StoreError(f"no policy named {draft.policy_name!r}; apply it first "
                             "(capplan policies apply FILE)")
        plan_id = len(self.plans) + 1
        self.plans[plan_id] = as_stored(draft, plan_id=plan_id,
                                        first_step_id=self._next_step_id,
                                        created_at=self._now())
        self._next_step_id += len(draft.steps)
        if draft.forecast:
            self.save_forecast(plan_id, draft.forecast)
        if draft.quality is not None:
            q = draft.quality
            self.save_quality_report(q.queue, q.passed, dict(q.report))
        made_under = draft.details.get("policy_version")
        current = self.versions[draft.policy_name][-1].version
        if not draft.skipped_reason and made_under is not None and int(made_under) != current:
            self.plans[plan_id] = _cancel_pending(replace(self.plans[plan_id],
                                                          status=PlanStatus.SUPERSEDED))
            self.audit("superseded", actor="capplan", plan_id=plan_id, queue=draft.queue,
                       details={"reason": f"made under policy version {made_under}; the "
                                          f"policy is at version {current} now",
                                "policy_version": made_under})
        elif not draft.skipped_reason:
            for old in list(self.plans.values()):
                if old.queue == draft.queue and old.id < plan_id and \
                        old.status == PlanStatus.PROPOSED:
                    self.plans[old.id] = _cancel_pending(replace(old,
                                                                 status=PlanStatus.SUPERSEDED))
                    self.audit("superseded", actor="capplan", plan_id=old.id, queue=old.queue,
                               details={"by_plan": plan_id,
                                        "reason": "a newer plan was proposed"})
        return plan_id

    def newer_plan(self, plan_id: int) -> StoredPlan | None:
        plan = self.get_plan(plan_id)
        return next((p for p in reversed(self.plans.values())
                     if p.queue == plan.queue and p.id > plan_id
                     and p.status != PlanStatus.SKIPPED), None)

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
        cap = (details or {}).get("max_workers")
        if to == PlanStatus.APPROVED:
            newer = self.newer_plan(plan_id)
            check_approvable(plan_id, plan.queue, plan.current_workers, cap,
                             None if newer is None else (newer.id, newer.status))
        check_transition(plan_id, plan.status, plan.decided_by, to)
        changed = replace(plan, status=to)
        if to == PlanStatus.APPROVED and cap is not None:
            changed = _capped(changed, int(cap))
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
        return expire_overdue_plans(self, now, actor=actor)

    def current_plan(self, queue: str) -> StoredPlan | None:
        return next((p for p in reversed(self.plans.values())
                     if p.queue == queue and p.status in LIVE), None)

    # -- the one clock
    def now(self) -> datetime:
        return self._now()  # type: ignore[no-any-return]

    # -- steps and audit
    def mark_step(self, step_id: int, status: StepStatus, *, actor: str,
                  details: dict[str, Any]) -> bool:
        with self._lock:
            return self._cas(step_id, StepStatus.PENDING, status, owner=None, actor=actor,
                             action=f"step_{status.value}", details=details)

    def claim_step(self, step_id: int, *, run_id: str, lease_s: float,
                   actor: str) -> StepClaim | None:
        with self._lock:
            now = self.now()
            _, step = self._find_step(step_id)
            if step.status == StepStatus.PENDING:
                to = StepStatus.CLAIMED
            elif step.status in STEP_LEASED and (step.claimed_by == run_id or (
                    step.lease_until is not None and step.lease_until < now)):
                to = StepStatus(step.status)
            else:
                return None
            until = now + timedelta(seconds=lease_s)
            was, owner = step.status, step.claimed_by
            action = "step_claimed" if was == StepStatus.PENDING else "step_taken_over"
            self._cas(step_id, StepStatus(was), to, owner=owner, actor=actor, action=action,
                      details={"run_id": run_id, "lease_until": until.isoformat(), "was": was,
                               "previous_run": owner}, new_owner=run_id, lease_until=until)
            return StepClaim(self._find_step(step_id)[1], run_id, until, was,
                             None if was == StepStatus.PENDING else owner)

    def renew_claim(self, step_id: int, *, run_id: str, lease_s: float) -> bool:
        with self._lock:
            plan, step = self._find_step(step_id)
            if step.status not in STEP_LEASED or step.claimed_by != run_id:
                return False
            renewed = replace(step, lease_until=self.now() + timedelta(seconds=lease_s))
            self.plans[plan.id] = replace(plan, steps=tuple(
                renewed if s.id == step_id else s for s in plan.steps))
            return True

    def move_step(self, step_id: int, frm: StepStatus, to: StepStatus, *, run_id: str,
                  actor: str, details: dict[str, Any], action: str | None = None,
                  lease_s: float | None = None, lease_ended: bool = False) -> bool:
        with self._lock:
            now = self.now()
            until = (now if lease_ended else
                     None if lease_s is None else now + timedelta(seconds=lease_s))
            return self._cas(step_id, frm, to, owner=run_id, actor=actor,
                             action=action or f"step_{to.value}", details=details,
                             new_owner=run_id, lease_until=until)

    def _find_step(self, step_id: int) -> tuple[StoredPlan, StoredStep]:
        for plan in self.plans.values():
            for st in plan.steps:
                if st.id == step_id:
                    return plan, st
        raise StoreError(f"no step with id {step_id}")

    def _cas(self, step_id: int, frm: StepStatus, to: StepStatus, *, owner: str | None,
             actor: str, action: str, details: dict[str, Any], new_owner: str | None = None,
             lease_until: datetime | None = None) -> bool:
        direct = owner is None and frm == StepStatus.PENDING and to in STEP_FINAL
        if not (direct or step_may_move(frm, to)):
            raise DecisionConflict(f"step {step_id} cannot move {frm.value} -> {to.value}")
        plan, step = self._find_step(step_id)
        if step.status != frm or step.claimed_by != owner:
            return False
        if to in STEP_FINAL or to == StepStatus.PENDING:
            moved = replace(step, status=to, claimed_by=None, lease_until=None)
        else:
            moved = replace(step, status=to, claimed_by=new_owner,
                            lease_until=lease_until or step.lease_until)
        if to in STEP_FINAL:
            moved = replace(moved, applied_at=self._now())
        steps = tuple(moved if s.id == step_id else s for s in plan.steps)
        plan = replace(plan, steps=steps)
        self.audit(action, actor=actor, plan_id=plan.id, queue=plan.queue,
                   details={"step_id": step_id, "from_status": frm.value,
                            "to_status": to.value, **details})
        if to in STEP_FINAL and plan.status == PlanStatus.APPROVED and all(
                s.status in STEP_FINAL for s in steps):
            plan = replace(plan, status=PlanStatus.APPLIED)
        self.plans[plan.id] = plan
        return True

    def acquire_target_lease(self, target: str, *, holder: str, lease_s: float) -> bool:
        with self._lock:
            now = self.now()
            held = self.target_leases.get(target)
            if held is not None and held[0] != holder and held[1] >= now:
                return False
            self.target_leases[target] = (holder, now + timedelta(seconds=lease_s))
            return True

    def release_target_lease(self, target: str, *, holder: str) -> bool:
        with self._lock:
            held = self.target_leases.get(target)
            if held is None or held[0] != holder:
                return False
            self.target_leases[target] = (holder, self._now() - timedelta(seconds=1))
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


def _capped(plan: StoredPlan, max_workers: int) -> StoredPlan:
    if not plan.steps:
        return plan
    capped = capped_steps(plan.steps[0].from_workers,
                          [(s.from_workers, s.to_workers) for s in plan.steps], max_workers)
    steps = []
    for s, (frm, to) in zip(plan.steps, capped, strict=True):
        if (frm, to) != (s.from_workers, s.to_workers):
            s = replace(s, from_workers=frm, to_workers=to, explanation={
                **s.explanation, "planned": {"from_workers": s.from_workers,
                                             "to_workers": s.to_workers},
                "capped_by": max_workers})
        steps.append(s)
    return replace(plan, steps=tuple(steps))


def _cancel_pending(plan: StoredPlan) -> StoredPlan:
    return replace(plan, steps=tuple(
        replace(s, status=StepStatus.CANCELLED) if s.status == StepStatus.PENDING else s
        for s in plan.steps))


if TYPE_CHECKING:  # mypy checks the fake against the port
    _port: type[PlanRepository] = InMemoryPlanStore
