"""The plan repository port: what the core needs from a plan store.

Implemented by :class:`capplan_adapters.store.repo.PlanStore` (SQLAlchemy, PostgreSQL or SQLite)
and by :class:`capplan_adapters.store.memory.InMemoryPlanStore` (unit tests). Every method returns
frozen domain objects from :mod:`capplan_core.planning.stored_plan`, never database rows.
Errors: :class:`~capplan_core.planning.errors.StoreError` for unknown ids,
:class:`~capplan_core.planning.errors.DecisionConflict` for a transition the state machine refuses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from capplan_core.planning.policy_versions import PolicyChange, PolicyVersion
from capplan_core.planning.stored_plan import (
    AuditEntry,
    ForecastPoint,
    PlanDraft,
    PlanStatus,
    StepClaim,
    StepStatus,
    StoredPlan,
)
from capplan_core.policy import ScalingPolicy


class PlanRepository(Protocol):
    # -- policies (versioned: capplan_core.planning.policy_versions)
    def apply_policies(
        self, policies: Iterable[ScalingPolicy], *, actor: str, comment: str = ""
    ) -> list[PolicyChange]:
        """Store a new version of each policy whose spec changed (audited, one transaction);
        a change supersedes that policy's proposed and live plans. Raises ``PolicyError``
        when two policies would share a queue or a target."""
        ...

    def current_policy(self, name: str) -> PolicyVersion: ...

    def get_policy(self, name: str) -> ScalingPolicy:
        """The current version of a policy."""
        ...

    def policy_version(self, name: str, version: int) -> PolicyVersion: ...

    def list_policies(self) -> list[PolicyVersion]: ...

    def policy_history(self, name: str) -> list[PolicyVersion]: ...

    def approve_policy_version(
        self, name: str, version: int, token: str, *, actor: str
    ) -> PolicyChange:
        """Four eyes: a pending version (it widened authority) takes effect with a current
        approver's signed token (:mod:`capplan_core.approval.policy_signing`); a refusal is
        audited ``policy_approval_refused`` and raises ``PolicyError``."""
        ...

    def policy_for_plan(self, plan: StoredPlan) -> ScalingPolicy:
        """The policy version ``plan`` was made under: its steps execute under it."""
        ...

    # -- plans
    def create_plan(self, draft: PlanDraft) -> int:
        """Store a plan with its steps, simulation, forecast points and quality report, all
        or nothing; returns its id (status proposed, or skipped when the draft has a
        ``skipped_reason``). Idempotent per (``flow_run_id``, queue): a retry returns the id
        stored first. A proposed plan supersedes its queue's older proposed plans."""
        ...

    def newer_plan(self, plan_id: int) -> StoredPlan | None:
        """The newest plan of the same queue made after ``plan_id`` (skipped ones aside)."""
        ...

    def get_plan(self, plan_id: int) -> StoredPlan: ...

    def list_plans(
        self, *, queue: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[StoredPlan]:
        """Newest first."""
        ...

    def set_flow_run(
        self, plan_id: int, flow_run_id: str, approval_deadline: datetime | None = None
    ) -> None: ...

    def transition(
        self,
        plan_id: int,
        to: PlanStatus,
        *,
        actor: str,
        comment: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> StoredPlan:
        """Move a plan along :data:`~capplan_core.planning.stored_plan.PLAN_TRANSITIONS`,
        audited in the same write; an approval supersedes the queue's older live plans.

        Approving raises :class:`~capplan_core.planning.errors.StalePlan` if a newer plan of the
        queue exists and :class:`~capplan_core.planning.errors.CapRefused` for a refused
        ``details["max_workers"]``; an allowed cap clips the steps
        (:func:`capplan_core.approval.cap.capped_steps`)."""
        ...

    def plan_for_flow_run(self, flow_run_id: str) -> StoredPlan | None: ...

    def expire_undecided(self, now: datetime, *, actor: str = "capplan") -> list[int]: ...

    def current_plan(self, queue: str) -> StoredPlan | None:
        """The live (approved or applied) plan of a queue, if any."""
        ...

    # -- the one clock
    def now(self) -> datetime:
        """The store's clock (UTC): the database's on PostgreSQL. Claims, leases, due checks
        and expiry read this one clock, never a worker's own (docs/reliability.md)."""
        ...

    # -- steps and audit
    def mark_step(
        self, step_id: int, status: StepStatus, *, actor: str, details: dict[str, Any]
    ) -> bool:
        """Record a pending step's outcome once; False if it had left ``pending``."""
        ...

    def claim_step(
        self, step_id: int, *, run_id: str, lease_s: float, actor: str
    ) -> StepClaim | None:
        """``pending -> claimed`` for ``run_id`` until the store's now + ``lease_s``, or take
        over a claimed/applying step whose lease ran out; None when held by another run or
        final."""
        ...

    def renew_claim(self, step_id: int, *, run_id: str, lease_s: float) -> bool:
        """Extend ``run_id``'s claim on a claimed/applying step to the store's now +
        ``lease_s``; False when the step is no longer held by ``run_id`` (taken over, or
        final): the fencing check before every cluster write."""
        ...

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
        """One compare-and-set transition of a step held by ``run_id``, audited with it;
        False when the step is no longer ``frm`` under ``run_id``. ``lease_s`` renews the
        lease from the store's now; ``lease_ended`` ends it (a step given up in doubt)."""
        ...

    def acquire_target_lease(self, target: str, *, holder: str, lease_s: float) -> bool:
        """Take or renew the one-writer lease on a scaling target until the store's now +
        ``lease_s``; False while another holder's lease runs."""
        ...

    def release_target_lease(self, target: str, *, holder: str) -> bool: ...

    def last_scale_at(self, queue: str, *, plan_id: int | None = None) -> datetime | None: ...

    def approval_limits(self, plan_id: int) -> dict[str, Any]: ...

    def audit(
        self,
        action: str,
        *,
        actor: str,
        plan_id: int | None = None,
        queue: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None: ...

    def audit_events(
        self, *, plan_id: int | None = None, action: str | None = None
    ) -> list[AuditEntry]: ...

    def latest_audit_event(self, action: str, *, queue: str) -> AuditEntry | None:
        """The newest audit row of ``action`` for ``queue`` (e.g. a ``strategy-chosen``)."""
        ...

    # -- approvers' public keys and the store's identity (signed decisions, issue 24)
    #: trust anchors, {approver: public keys}: set by the composition root from
    #: ``CAPPLAN_APPROVER_ANCHORS``, never read from the store itself. When set, a first
    #: policy version that can act needs a signature too (approval/widening.pending_reasons)
    approver_anchors: Mapping[str, tuple[str, ...]]

    def store_id(self) -> str:
        """This store's id, made once when it was created: a signed decision names it, so
        two stores never accept each other's decisions."""
        ...

    def approver_public_keys(self, approver: str) -> list[str]:
        """The approver's public keys in force, newest first: anchored or endorsed, never
        revoked (capplan_core/approval/key_trust.py)."""
        ...

    def keys_in_force(self) -> dict[str, list[str]]:
        """{approver: public keys in force} (capplan_core/approval/key_trust.py)."""
        ...

    def add_approver_public_key(
        self, approver: str, public_key: str, *, actor: str, endorsement: str | None = None
    ) -> int:
        """Store a public key for ``approver`` (audited ``approver_key_added``); returns its
        version (1, 2, ... per approver). The same key twice is stored once. Refused
        (:class:`StoreError`, audited ``approver_key_refused``) unless it would be in force:
        an anchor, the store's first key when no anchor is set, or ``endorsement`` by another
        approver's key in force."""
        ...

    def revoke_approver_public_key(self, approver: str, version: int, *, actor: str) -> None:
        """Revoke one of ``approver``'s keys (audited): signatures under it stop counting,
        for decisions not yet taken and at every later write."""
        ...

    # -- forecasts and data quality
    def save_forecast(self, plan_id: int | None, points: Iterable[ForecastPoint]) -> int: ...

    def forecast_points(self, plan_id: int) -> list[ForecastPoint]: ...

    def save_quality_report(self, queue: str, passed: bool, report: dict[str, Any]) -> int: ...
