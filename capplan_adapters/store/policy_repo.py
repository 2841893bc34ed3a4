"""Versioned policies in the plan store (``scaling_policy`` + ``policy_version``).

Mixed into :class:`capplan_adapters.store.repo.PlanStore`. ``apply_policies`` is one transaction:
each changed policy gets a new version (who, when, digest), its proposed and live plans are
superseded (audited, pending steps cancelled), and the change is audited; an unchanged spec
writes nothing. See :mod:`capplan_core.planning.policy_versions`.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from capplan_adapters.store.models import (
    AuditEventRow,
    CapacityPlanRow,
    PolicyVersionRow,
    ScalingPolicyRow,
)
from capplan_adapters.store.plan_reads import PlanReader
from capplan_adapters.store.plan_writes import apply_update
from capplan_adapters.store.rows import policy_version_from_row
from capplan_core.approval.policy_signing import decode_version_token, pending_approval_problem
from capplan_core.approval.signature import SignatureError
from capplan_core.approval.widening import pending_reasons
from capplan_core.planning import plan_rules as rules
from capplan_core.planning.errors import StoreError
from capplan_core.planning.policy_versions import (
    PolicyChange,
    PolicyVersion,
    check_policy_set,
    policy_digest,
    policy_document,
    version_audit,
)
from capplan_core.policy import PolicyError, ScalingPolicy

#: plan statuses a policy change supersedes: not yet decided, or live


class PolicyRepository(PlanReader):
    """Policy versions (shares :class:`PlanStore`'s sessions; the current ones are listed by
    :class:`PlanReader`)."""

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
        # the same meaning, not the same bytes: a field added to the model since the version
        # was stored (spelled out now, with its default) is no change
        if row is not None and policy_digest(ScalingPolicy.model_validate(row.spec)) == digest:
            return PolicyChange(p.name, row.version, row.version, changed=False)
        previous = None if row is None else row.version
        reasons = tuple(
            pending_reasons(
                None if row is None else ScalingPolicy.model_validate(row.spec),
                p,
                anchored=bool(self.approver_anchors),  # type: ignore[attr-defined]
            )
        )
        waiting = s.scalar(
            select(PolicyVersionRow).where(
                PolicyVersionRow.name == p.name,
                PolicyVersionRow.sha256 == digest,
                PolicyVersionRow.pending.is_(True),
            )
        )
        if reasons and waiting is not None:  # the same widening version applied again
            return PolicyChange(p.name, waiting.version, previous, changed=False, pending=reasons)
        last = s.scalar(
            select(func.max(PolicyVersionRow.version)).where(PolicyVersionRow.name == p.name)
        )
        version = int(last or 0) + 1
        spec = policy_document(p)
        s.add(
            PolicyVersionRow(
                name=p.name,
                version=version,
                spec=spec,
                sha256=digest,
                applied_by=actor,
                comment=comment,
                pending=bool(reasons),
            )
        )
        if reasons:  # four eyes: stored, not in effect until a current approver signs it
            action, details = version_audit(p, version, previous, digest, comment, widens=reasons)
            s.add(AuditEventRow(actor=actor, action=action, queue=p.queue, details=details))
            return PolicyChange(p.name, version, previous, changed=True, pending=reasons)
        superseded = self._make_current(s, row, p, version, actor)
        action, details = version_audit(
            p, version, previous, digest, comment, superseded=superseded
        )
        s.add(AuditEventRow(actor=actor, action=action, queue=p.queue, details=details))
        return PolicyChange(
            p.name, version, previous, changed=True, superseded_plans=tuple(superseded)
        )

    def _make_current(
        self, s: Session, row: ScalingPolicyRow | None, p: ScalingPolicy, version: int, actor: str
    ) -> list[int]:
        """``version`` (stored) becomes the policy's current one; its plans are superseded."""
        spec = policy_document(p)
        if row is None:
            row = ScalingPolicyRow(name=p.name)
            s.add(row)
        row.enabled, row.mode, row.queue, row.version = p.enabled, p.mode.value, p.queue, version
        row.target, row.slo_targets = spec["target"], spec["slo"]
        row.scaling_constraints, row.spec = spec["scaling"], spec
        s.flush()
        return self._supersede_for_policy(s, row, version, actor)

    def approve_policy_version(
        self, name: str, version: int, token: str, *, actor: str
    ) -> PolicyChange:
        """A pending version takes effect with a current approver's signed token (four
        eyes); a refusal is audited ``policy_approval_refused`` and raises ``PolicyError``."""
        store_id, now = self.store_id(), self.now()  # type: ignore[attr-defined]
        # the signer's keys are read before the write transaction (SQLite takes its write
        # lock at BEGIN: a read in a second session inside it would wait for itself)
        keys = self._signer_keys(token)
        with self._session.begin() as s:
            row = s.scalar(
                select(ScalingPolicyRow).where(ScalingPolicyRow.name == name).with_for_update()
            )
            target = self._version_of(s, name, version)  # raises for an unknown policy
            current = None if row is None else self._version_of(s, name, row.version)
            problem = pending_approval_problem(
                token,
                target=target,
                current=current,
                store_id=store_id,
                public_keys=lambda _name: keys,
                at=now,
            )
            if problem is None:
                others = [
                    ScalingPolicy.model_validate(r.spec)
                    for r in s.scalars(
                        select(ScalingPolicyRow).where(ScalingPolicyRow.name != name)
                    )
                ]
                try:
                    check_policy_set(others, [target.policy])
                except PolicyError as err:
                    problem = str(err)
        if problem is not None:
            self.audit(  # type: ignore[attr-defined]
                "policy_approval_refused",
                actor=actor,
                details={"policy": name, "version": version, "reason": problem},
            )
            raise PolicyError(problem)
        with self._session.begin() as s:
            row = s.scalar(
                select(ScalingPolicyRow).where(ScalingPolicyRow.name == name).with_for_update()
            )
            vrow = s.scalar(
                select(PolicyVersionRow).where(
                    PolicyVersionRow.name == name, PolicyVersionRow.version == version
                )
            )
            assert vrow is not None
            previous = None if row is None else row.version
            vrow.pending, vrow.approved_by, vrow.approval, vrow.approved_at = (
                False,
                actor,
                token.strip(),
                now,
            )
            superseded = (
                []  # the current version signed in place: it stays current, nothing changes
                if previous == version
                else self._make_current(s, row, target.policy, version, actor)
            )
            s.add(
                AuditEventRow(
                    actor=actor,
                    action="policy_version_approved",
                    queue=target.policy.queue,
                    details={
                        "policy": name,
                        "version": version,
                        "previous": previous,
                        "applied_by": target.applied_by,
                        "superseded_plans": superseded,
                    },
                )
            )
        return PolicyChange(
            name, version, previous, changed=True, superseded_plans=tuple(superseded)
        )

    def _signer_keys(self, token: str) -> list[str]:
        try:
            statement, _ = decode_version_token(token)
        except SignatureError:
            return []  # refused below, with the reason
        return list(self.approver_public_keys(statement.approver))  # type: ignore[attr-defined]

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
        return policy_version_from_row(row)

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
        return [policy_version_from_row(r) for r in rows]
