"""Versioned policies in the plan store (``scaling_policy`` + ``policy_version``).

Mixed into :class:`capplan_adapters.store.repo.PlanStore`. ``apply_policies`` is one transaction:
each changed policy gets a new version (who, when, digest), its proposed and live plans are
superseded (audited, pending steps cancelled), and the change is audited; an unchanged spec
writes nothing. See :mod:`capplan_core.planning.policy_versions`.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from capplan_adapters.store.models import (
    AuditEventRow,
    CapacityPlanRow,
    PolicyVersionRow,
    ScalingPolicyRow,
)
from capplan_adapters.store.plan_writes import apply_update
from capplan_core.planning import plan_rules as rules
from capplan_core.planning.errors import StoreError
from capplan_core.planning.policy_versions import (
    PolicyChange,
    PolicyVersion,
    check_policy_set,
    policy_digest,
    policy_document,
)
from capplan_core.policy import ScalingPolicy

#: plan statuses a policy change supersedes: not yet decided, or live


def _version(row: PolicyVersionRow) -> PolicyVersion:
    policy = ScalingPolicy.model_validate(row.spec)
    return PolicyVersion(
        name=row.name,
        version=row.version,
        policy=policy,
        sha256=row.sha256 or policy_digest(policy),
        applied_by=row.applied_by,
        applied_at=row.applied_at,
        comment=row.comment or "",
    )


class PolicyRepository:
    """Policy versions (shares :class:`PlanStore`'s sessions)."""

    _session: sessionmaker[Session]

    def apply_policies(
        self, policies: Iterable[ScalingPolicy], *, actor: str, comment: str = ""
    ) -> list[PolicyChange]:
        """Store a new version of each policy whose spec changed; one transaction.

        Raises :class:`~capplan_core.policy.PolicyError` (nothing written) when the stored
        and applied policies together would put two policies on one queue or target.
        """
        policies = list(policies)
        changes: list[PolicyChange] = []
        with self._session.begin() as s:
            rows = {r.name: r for r in s.scalars(select(ScalingPolicyRow).with_for_update())}
            check_policy_set(
                (ScalingPolicy.model_validate(r.spec) for r in rows.values()), policies
            )
            for p in policies:
                changes.append(self._apply_one(s, rows.get(p.name), p, actor, comment))
        return changes

    def _apply_one(
        self, s: Session, row: ScalingPolicyRow | None, p: ScalingPolicy, actor: str, comment: str
    ) -> PolicyChange:
        digest = policy_digest(p)
        if row is not None:
            current = s.scalar(
                select(PolicyVersionRow).where(
                    PolicyVersionRow.name == p.name, PolicyVersionRow.version == row.version
                )
            )
            stored_digest = (
                current.sha256
                if current is not None and current.sha256
                else policy_digest(ScalingPolicy.model_validate(row.spec))
            )
            if stored_digest == digest:
                return PolicyChange(p.name, row.version, row.version, changed=False)
        previous = None if row is None else row.version
        version = 1 if previous is None else previous + 1
        spec = policy_document(p)
        if row is None:
            row = ScalingPolicyRow(name=p.name)
            s.add(row)
        row.enabled, row.mode, row.queue, row.version = p.enabled, p.mode.value, p.queue, version
        row.target, row.slo_targets = spec["target"], spec["slo"]
        row.scaling_constraints, row.spec = spec["scaling"], spec
        s.add(
            PolicyVersionRow(
                name=p.name,
                version=version,
                spec=spec,
                sha256=digest,
                applied_by=actor,
                comment=comment,
            )
        )
        s.flush()
        superseded = self._supersede_for_policy(s, row, version, actor)
        s.add(
            AuditEventRow(
                actor=actor,
                action="policy_applied",
                queue=p.queue,
                details={
                    "policy": p.name,
                    "version": version,
                    "previous": previous,
                    "sha256": digest,
                    "comment": comment,
                    "superseded_plans": superseded,
                },
            )
        )
        return PolicyChange(
            p.name, version, previous, changed=True, superseded_plans=tuple(superseded)
        )

    @staticmethod
    def _supersede_for_policy(
        s: Session, row: ScalingPolicyRow, version: int, actor: str
    ) -> list[int]:
        plans = list(
            s.scalars(
                select(CapacityPlanRow)
                .where(
                    CapacityPlanRow.policy_id == row.id,
                    CapacityPlanRow.status.in_(rules.SUPERSEDED_BY_POLICY_CHANGE),
                )
                .with_for_update()
            )
        )
        for plan in plans:
            apply_update(
                s,
                plan,
                rules.superseded_by_policy_change(
                    plan.id, plan.queue, str(plan.status), row.name, version, actor
                ),
            )
        return [p.id for p in plans]

    def current_policy(self, name: str) -> PolicyVersion:
        """The policy's current version; :class:`StoreError` for an unknown name."""
        with self._session() as s:
            row = s.scalar(select(ScalingPolicyRow).where(ScalingPolicyRow.name == name))
            if row is None:
                raise StoreError(
                    f"no policy named {name!r}; apply it first (capplan policies apply FILE)"
                )
            return self._version_of(s, name, row.version)

    def get_policy(self, name: str) -> ScalingPolicy:
        """The policy's current version, as a policy."""
        return self.current_policy(name).policy

    def policy_version(self, name: str, version: int) -> PolicyVersion:
        with self._session() as s:
            return self._version_of(s, name, version)

    @staticmethod
    def _version_of(s: Session, name: str, version: int) -> PolicyVersion:
        row = s.scalar(
            select(PolicyVersionRow).where(
                PolicyVersionRow.name == name, PolicyVersionRow.version == version
            )
        )
        if row is None:
            raise StoreError(f"policy {name!r} has no version {version}")
        return _version(row)

    def list_policies(self) -> list[PolicyVersion]:
        """Every policy at its current version, by name."""
        with self._session() as s:
            rows = s.execute(
                select(PolicyVersionRow)
                .join(
                    ScalingPolicyRow,
                    (ScalingPolicyRow.name == PolicyVersionRow.name)
                    & (ScalingPolicyRow.version == PolicyVersionRow.version),
                )
                .order_by(PolicyVersionRow.name)
            ).scalars()
            return [_version(r) for r in rows]

    def policy_history(self, name: str) -> list[PolicyVersion]:
        """Every version of a policy, oldest first; :class:`StoreError` for an unknown name."""
        with self._session() as s:
            rows = list(
                s.scalars(
                    select(PolicyVersionRow)
                    .where(PolicyVersionRow.name == name)
                    .order_by(PolicyVersionRow.version)
                )
            )
        if not rows:
            raise StoreError(f"no policy named {name!r}")
        return [_version(r) for r in rows]
