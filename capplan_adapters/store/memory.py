"""An in-memory :class:`~capplan_core.planning.repository.PlanRepository` for unit tests.

Same behaviour as the SQL store (state machine, supersede on approval, step written once,
audit on every change), no database. One process only; the step state machine and the target
leases run under a lock, so threads may race on them as they do on the SQL store.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from capplan_core.approval.key_trust import (
    KeyRecord,
    key_added_details,
    key_refused_details,
    keys_in_force,
    registration_problem,
)
from capplan_core.approval.policy_signing import pending_approval_problem
from capplan_core.approval.signature import check_public_key
from capplan_core.approval.widening import pending_reasons
from capplan_core.planning import plan_rules as rules
from capplan_core.planning.expiry import expire_overdue_plans
from capplan_core.planning.policy_versions import (
    PolicyChange,
    PolicyVersion,
    check_policy_set,
    policy_digest,
    version_audit,
)
from capplan_core.planning.stored_plan import (
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
)
from capplan_core.policy import PolicyError, ScalingPolicy

if TYPE_CHECKING:
    from capplan_core.planning.repository import PlanRepository
from capplan_core.planning.errors import StoreError


class InMemoryPlanStore:
    """Plans, steps, audit entries, forecasts and policies in dictionaries."""

    def __init__(self, clock: Any = None) -> None:
        self._now = clock or (lambda: datetime.now(UTC))
        self.policies: dict[str, ScalingPolicy] = {}
        self.versions: dict[str, list[PolicyVersion]] = {}
        self.current_versions: dict[str, int] = {}
        self.plans: dict[int, StoredPlan] = {}
        self.events: list[AuditEntry] = []
        self.forecasts: dict[int | None, list[ForecastPoint]] = {}
        self.quality_reports: list[tuple[str, bool, dict[str, Any]]] = []
        self._next_step_id = 1
        self.target_leases: dict[str, tuple[str, datetime]] = {}
        self.identity = uuid.uuid4().hex
        # every registered key, in registration order (capplan_core/approval/key_trust.py)
        self.approver_keys: list[KeyRecord] = []
        self.approver_anchors: Mapping[str, tuple[str, ...]] = {}
        self._lock = threading.RLock()

    # -- policies
    def apply_policies(
        self, policies: Iterable[ScalingPolicy], *, actor: str, comment: str = ""
    ) -> list[PolicyChange]:
        policies = list(policies)
        with self._lock:
            check_policy_set(self.policies.values(), policies)
            return [self._apply_one(p, actor, comment) for p in policies]

    def _apply_one(self, p: ScalingPolicy, actor: str, comment: str) -> PolicyChange:
        history = self.versions.setdefault(p.name, [])
        digest = policy_digest(p)
        current = self._current(p.name)
        if current is not None and current.sha256 == digest:
            return PolicyChange(p.name, current.version, current.version, False)
        previous = None if current is None else current.version
        reasons = tuple(
            pending_reasons(
                None if current is None else current.policy,
                p,
                anchored=bool(self.approver_anchors),
            )
        )
        waiting = [v for v in history if v.pending and v.sha256 == digest]
        if reasons and waiting:
            return PolicyChange(p.name, waiting[0].version, previous, False, pending=reasons)
        version = max((v.version for v in history), default=0) + 1
        history.append(
            PolicyVersion(
                p.name, version, p, digest, actor, self._now(), comment, pending=bool(reasons)
            )
        )
        if reasons:
            action, details = version_audit(p, version, previous, digest, comment, widens=reasons)
            self.audit(action, actor=actor, queue=p.queue, details=details)
            return PolicyChange(p.name, version, previous, True, pending=reasons)
        superseded = self._make_current(p, version, actor)
        action, details = version_audit(
            p, version, previous, digest, comment, superseded=superseded
        )
        self.audit(action, actor=actor, queue=p.queue, details=details)
        return PolicyChange(p.name, version, previous, True, tuple(superseded))

    def _make_current(self, p: ScalingPolicy, version: int, actor: str) -> list[int]:
        self.policies[p.name] = p
        self.current_versions[p.name] = version
        superseded = []
        for plan in list(self.plans.values()):
            if plan.policy_name == p.name and plan.status in rules.SUPERSEDED_BY_POLICY_CHANGE:
                self._apply(
                    rules.superseded_by_policy_change(
                        plan.id, plan.queue, str(plan.status), p.name, version, actor
                    )
                )
                superseded.append(plan.id)
        return superseded

    def _current(self, name: str) -> PolicyVersion | None:
        at = self.current_versions.get(name)
        return None if at is None else self.policy_version(name, at)

    def approve_policy_version(
        self, name: str, version: int, token: str, *, actor: str
    ) -> PolicyChange:
        with self._lock:
            current = self._current(name)
            target = self.policy_version(name, version)
            problem = pending_approval_problem(
                token,
                target=target,
                current=current,
                store_id=self.store_id(),
                public_keys=self.approver_public_keys,
                at=self._now(),
            )
            if problem is None:
                try:
                    others = [q for n, q in self.policies.items() if n != name]
                    check_policy_set(others, [target.policy])
                except PolicyError as err:
                    problem = str(err)
            if problem is not None:
                self.audit(
                    "policy_approval_refused",
                    actor=actor,
                    details={"policy": name, "version": version, "reason": problem},
                )
                raise PolicyError(problem)
            history = self.versions[name]
            history[history.index(target)] = replace(
                target, pending=False, approved_by=actor, approval=token.strip(),
                approved_at=self._now(),
            )  # fmt: skip
            previous = None if current is None else current.version
            superseded = (
                []  # the current version signed in place: it stays current
                if previous == version
                else self._make_current(target.policy, version, actor)
            )
            self.audit(
                "policy_version_approved",
                actor=actor,
                queue=target.policy.queue,
                details={
                    "policy": name,
                    "version": version,
                    "previous": previous,
                    "applied_by": target.applied_by,
                    "superseded_plans": superseded,
                },
            )
            return PolicyChange(name, version, previous, True, tuple(superseded))

    def current_policy(self, name: str) -> PolicyVersion:
        current = self._current(name)
        if current is None:
            raise StoreError(
                f"no policy named {name!r}; apply it first (capplan policies apply FILE)"
            )
        return current

    def get_policy(self, name: str) -> ScalingPolicy:
        return self.current_policy(name).policy

    def policy_version(self, name: str, version: int) -> PolicyVersion:
        found = [v for v in self.versions.get(name, []) if v.version == version]
        if not found:
            raise StoreError(f"policy {name!r} has no version {version}")
        return found[0]

    def list_policies(self) -> list[PolicyVersion]:
        return [self.current_policy(n) for n in sorted(self.current_versions)]

    def policy_history(self, name: str) -> list[PolicyVersion]:
        if name not in self.versions:
            raise StoreError(f"no policy named {name!r}")
        return list(self.versions[name])

    def policy_for_plan(self, plan: StoredPlan) -> ScalingPolicy:
        if plan.policy_name is None:
            raise StoreError(f"plan {plan.id} names no policy")
        return self.policy_version(
            plan.policy_name, int(plan.details.get("policy_version") or 1)
        ).policy

    # -- plans
    def create_plan(self, draft: PlanDraft) -> int:
        if draft.flow_run_id is not None:
            for p in self.plans.values():
                if (p.flow_run_id, p.queue) == (draft.flow_run_id, draft.queue):
                    return p.id
        if draft.policy_name not in self.policies:
            raise StoreError(
                f"no policy named {draft.policy_name!r}; apply it first "
                "(capplan policies apply FILE)"
            )
        plan_id = len(self.plans) + 1
        self.plans[plan_id] = as_stored(
            draft, plan_id=plan_id, first_step_id=self._next_step_id, created_at=self._now()
        )
        self._next_step_id += len(draft.steps)
        if draft.forecast:
            self.save_forecast(plan_id, draft.forecast)
        if draft.quality is not None:
            q = draft.quality
            self.save_quality_report(q.queue, q.passed, dict(q.report))
        current = self.current_versions[draft.policy_name]
        made_under = rules.outdated(
            draft.details.get("policy_version"), current, bool(draft.skipped_reason)
        )
        if made_under is not None:
            self._apply(rules.superseded_as_outdated(plan_id, draft.queue, made_under, current))
        elif not draft.skipped_reason:
            for old in list(self.plans.values()):
                if (
                    old.queue == draft.queue
                    and old.id < plan_id
                    and old.status == PlanStatus.PROPOSED
                ):
                    self._apply(rules.superseded_by_newer(old.id, old.queue, plan_id))
        return plan_id

    def newer_plan(self, plan_id: int) -> StoredPlan | None:
        plan = self.get_plan(plan_id)
        return next(
            (
                p
                for p in reversed(self.plans.values())
                if p.queue == plan.queue and p.id > plan_id and p.status != PlanStatus.SKIPPED
            ),
            None,
        )

    def get_plan(self, plan_id: int) -> StoredPlan:
        if plan_id not in self.plans:
            raise StoreError(f"no plan with id {plan_id}")
        return self.plans[plan_id]

    def list_plans(
        self, *, queue: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[StoredPlan]:
        found = [
            p
            for p in reversed(self.plans.values())
            if (not queue or p.queue == queue) and (not status or p.status == status)
        ]
        return found[:limit]

    def set_flow_run(
        self, plan_id: int, flow_run_id: str, approval_deadline: datetime | None = None
    ) -> None:
        plan = self.get_plan(plan_id)
        details = (
            plan.details
            if approval_deadline is None
            else {**plan.details, "approval_deadline": approval_deadline.isoformat()}
        )
        self.plans[plan_id] = replace(plan, flow_run_id=flow_run_id, details=details)

    def transition(
        self,
        plan_id: int,
        to: PlanStatus,
        *,
        actor: str,
        comment: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> StoredPlan:
        plan = self.get_plan(plan_id)
        newer = self.newer_plan(plan_id) if to == PlanStatus.APPROVED else None
        change = rules.transition(
            rules.PlanFacts.of(plan),
            to,
            actor=actor,
            comment=comment,
            details=details,
            newer=None if newer is None else (newer.id, newer.status),
        )
        if to == PlanStatus.APPROVED:
            live = [
                (p.id, p.queue)
                for p in self.plans.values()
                if p.queue == plan.queue and p.status in LIVE
            ]
            for old in rules.live_to_supersede(plan.id, live):
                self._apply(old)
        return self._apply(change)

    def _apply(self, change: rules.PlanUpdate) -> StoredPlan:
        """Apply one of :mod:`capplan_core.planning.plan_rules`' updates, with its audit row."""
        plan = replace(self.get_plan(change.plan_id), status=change.status)
        steps = list(plan.steps)
        for e in change.step_edits:
            steps[e.index] = replace(
                steps[e.index],
                from_workers=e.from_workers,
                to_workers=e.to_workers,
                explanation=e.explanation,
            )
        if change.cancel_pending:
            steps = [
                replace(st, status=StepStatus.CANCELLED) if st.status == StepStatus.PENDING else st
                for st in steps
            ]
        plan = replace(plan, steps=tuple(steps))
        if change.decided_by is not None:
            plan = replace(
                plan,
                decided_by=change.decided_by,
                decided_at=self._now(),
                decision_comment=change.decision_comment,
            )
        self.plans[plan.id] = plan
        a = change.audit
        self.audit(a.action, actor=a.actor, plan_id=a.plan_id, queue=a.queue, details=a.details)
        return plan

    def plan_for_flow_run(self, flow_run_id: str) -> StoredPlan | None:
        return next(
            (p for p in reversed(self.plans.values()) if p.flow_run_id == flow_run_id), None
        )

    def expire_undecided(self, now: datetime, *, actor: str = "capplan") -> list[int]:
        return expire_overdue_plans(self, now, actor=actor)

    def current_plan(self, queue: str) -> StoredPlan | None:
        return next(
            (p for p in reversed(self.plans.values()) if p.queue == queue and p.status in LIVE),
            None,
        )

    # -- the one clock
    def now(self) -> datetime:
        return self._now()  # type: ignore[no-any-return]

    # -- steps and audit
    def mark_step(
        self, step_id: int, status: StepStatus, *, actor: str, details: dict[str, Any]
    ) -> bool:
        with self._lock:
            return self._cas(
                step_id,
                StepStatus.PENDING,
                status,
                owner=None,
                actor=actor,
                action=f"step_{status.value}",
                details=details,
            )

    def claim_step(
        self, step_id: int, *, run_id: str, lease_s: float, actor: str
    ) -> StepClaim | None:
        with self._lock:
            now = self.now()
            _, step = self._find_step(step_id)
            if step.status == StepStatus.PENDING:
                to = StepStatus.CLAIMED
            elif step.status in STEP_LEASED and (
                step.claimed_by == run_id
                or (step.lease_until is not None and step.lease_until < now)
            ):
                to = StepStatus(step.status)
            else:
                return None
            until = now + timedelta(seconds=lease_s)
            was, owner = step.status, step.claimed_by
            action = "step_claimed" if was == StepStatus.PENDING else "step_taken_over"
            self._cas(
                step_id,
                StepStatus(was),
                to,
                owner=owner,
                actor=actor,
                action=action,
                details={
                    "run_id": run_id,
                    "lease_until": until.isoformat(),
                    "was": was,
                    "previous_run": owner,
                },
                new_owner=run_id,
                lease_until=until,
            )
            return StepClaim(
                self._find_step(step_id)[1],
                run_id,
                until,
                was,
                None if was == StepStatus.PENDING else owner,
            )

    def renew_claim(self, step_id: int, *, run_id: str, lease_s: float) -> bool:
        with self._lock:
            plan, step = self._find_step(step_id)
            if step.status not in STEP_LEASED or step.claimed_by != run_id:
                return False
            renewed = replace(step, lease_until=self.now() + timedelta(seconds=lease_s))
            self.plans[plan.id] = replace(
                plan, steps=tuple(renewed if s.id == step_id else s for s in plan.steps)
            )
            return True

    def move_step(
        self,
        step_id: int,
        frm: StepStatus,
        to: StepStatus,
        *,
        run_id: str,
        actor: str,
        details: dict[str, Any],
        action: str | None = None,
        lease_s: float | None = None,
        lease_ended: bool = False,
    ) -> bool:
        with self._lock:
            now = self.now()
            until = (
                now
                if lease_ended
                else None
                if lease_s is None
                else now + timedelta(seconds=lease_s)
            )
            return self._cas(
                step_id,
                frm,
                to,
                owner=run_id,
                actor=actor,
                action=action or f"step_{to.value}",
                details=details,
                new_owner=run_id,
                lease_until=until,
            )

    def _find_step(self, step_id: int) -> tuple[StoredPlan, StoredStep]:
        for plan in self.plans.values():
            for st in plan.steps:
                if st.id == step_id:
                    return plan, st
        raise StoreError(f"no step with id {step_id}")

    def _cas(
        self,
        step_id: int,
        frm: StepStatus,
        to: StepStatus,
        *,
        owner: str | None,
        actor: str,
        action: str,
        details: dict[str, Any],
        new_owner: str | None = None,
        lease_until: datetime | None = None,
    ) -> bool:
        rules.check_step_move(step_id, frm, to, owner=owner)
        plan, step = self._find_step(step_id)
        if step.status != frm or step.claimed_by != owner:
            return False
        moved = replace(
            step, **rules.moved_step_fields(to, new_owner=new_owner, lease_until=lease_until)
        )
        if to in STEP_FINAL:
            moved = replace(moved, applied_at=self._now())
        steps = tuple(moved if s.id == step_id else s for s in plan.steps)
        plan = replace(plan, steps=steps)
        a = rules.step_audit(
            plan.id,
            plan.queue,
            step_id,
            frm.value,
            to.value,
            action=action,
            actor=actor,
            details=details,
        )
        self.audit(a.action, actor=a.actor, plan_id=a.plan_id, queue=a.queue, details=a.details)
        if to in STEP_FINAL and rules.plan_done(plan.status, [s.status for s in steps]):
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
        times = [
            s.applied_at
            for p in self.plans.values()
            if p.queue == queue and (plan_id is None or p.id == plan_id)
            for s in p.steps
            if s.status == StepStatus.APPLIED and s.applied_at
        ]
        return max(times, default=None)

    def approval_limits(self, plan_id: int) -> dict[str, Any]:
        return rules.approval_limits(
            self.audit_events(plan_id=plan_id, action=PlanStatus.APPROVED.value)
        )

    def audit(
        self,
        action: str,
        *,
        actor: str,
        plan_id: int | None = None,
        queue: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.events.append(
            AuditEntry(
                id=len(self.events) + 1,
                at=self._now(),
                actor=actor,
                action=action,
                plan_id=plan_id,
                queue=queue,
                details=dict(details or {}),
            )
        )

    def audit_events(
        self, *, plan_id: int | None = None, action: str | None = None
    ) -> list[AuditEntry]:
        return [
            e
            for e in self.events
            if (plan_id is None or e.plan_id == plan_id) and (action is None or e.action == action)
        ]

    def latest_audit_event(self, action: str, *, queue: str) -> AuditEntry | None:
        found = [e for e in self.events if e.action == action and e.queue == queue]
        return found[-1] if found else None

    # -- the store's id and approvers' public keys
    def store_id(self) -> str:
        return self.identity

    def approver_key_records(self) -> list[KeyRecord]:
        return list(self.approver_keys)

    def keys_in_force(self) -> dict[str, list[str]]:
        return keys_in_force(
            self.approver_keys, store_id=self.identity, anchors=self.approver_anchors
        )

    def approver_public_keys(self, approver: str) -> list[str]:
        return list(reversed(self.keys_in_force().get(approver, [])))

    def add_approver_public_key(
        self, approver: str, public_key: str, *, actor: str, endorsement: str | None = None
    ) -> int:
        key = check_public_key(public_key)
        with self._lock:
            problem = registration_problem(
                self.approver_keys,
                approver=approver,
                public_key=key,
                endorsement=endorsement,
                store_id=self.identity,
                anchors=self.approver_anchors,
                now=self.now(),
            )
            if problem is not None:
                self.audit(
                    "approver_key_refused",
                    actor=actor,
                    details=key_refused_details(approver, key, problem),
                )
                raise StoreError(problem)
            mine = [r for r in self.approver_keys if r.approver == approver]
            same = [r.version for r in mine if r.public_key == key and not r.revoked]
            if same:
                return same[0]
            version = max((r.version for r in mine), default=0) + 1
            self.approver_keys.append(
                KeyRecord(approver, version, key, self.now(), endorsement=endorsement)
            )
            self.audit(
                "approver_key_added",
                actor=actor,
                details=key_added_details(approver, version, key, endorsement),
            )
            return version

    def revoke_approver_public_key(self, approver: str, version: int, *, actor: str) -> None:
        with self._lock:
            found = [
                i
                for i, r in enumerate(self.approver_keys)
                if (r.approver, r.version) == (approver, version)
            ]
            if not found:
                raise StoreError(f"approver {approver!r} has no key version {version}")
            record = self.approver_keys[found[0]]
            if record.revoked:
                return
            self.approver_keys[found[0]] = replace(record, revoked=True)
            self.audit(
                "approver_key_revoked",
                actor=actor,
                details={"approver": approver, "version": version},
            )

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


if TYPE_CHECKING:  # mypy checks the fake against the port
    _port: type[PlanRepository] = InMemoryPlanStore
