"""The store's id and the approvers' public keys (signed decisions, issue 24).

Mixed into :class:`capplan_adapters.store.repo.PlanStore`. Only public keys are kept; a key
is checked (:func:`capplan_core.approval.signature.check_public_key`) before it is stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from types import MappingProxyType

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from capplan_adapters.store.column_types import utcnow
from capplan_adapters.store.models import ApproverKeyRow, AuditEventRow, StoreIdentityRow
from capplan_core.approval.key_trust import (
    KeyRecord,
    key_added_details,
    key_refused_details,
    keys_in_force,
    registration_problem,
)
from capplan_core.approval.signature import check_public_key
from capplan_core.planning.errors import StoreError


class KeyRepository:
    """Store identity and approver keys (shares :class:`PlanStore`'s sessions)."""

    _session: sessionmaker[Session]
    #: trust anchors, {approver: public keys}: set from ``CAPPLAN_APPROVER_ANCHORS`` by the
    #: app (capplan_app/bootstrap.py), never from the store
    approver_anchors: Mapping[str, tuple[str, ...]] = MappingProxyType({})

    def store_id(self) -> str:
        """The id migration 0006 made; a store whose ``store_identity`` was emptied gets a
        new one here (so decisions signed before are refused: as a different store)."""
        first = select(StoreIdentityRow.id).order_by(
            StoreIdentityRow.created_at, StoreIdentityRow.id
        )
        with self._session() as s:
            found = s.scalar(first)
        if found is None:
            with self._session.begin() as s:
                s.add(StoreIdentityRow(id=uuid.uuid4().hex))
            with self._session() as s:
                found = s.scalar(first)
        return str(found)

    def approver_key_records(self) -> list[KeyRecord]:
        """Every registered key, in registration order (revoked ones too)."""
        k = ApproverKeyRow
        with self._session() as s:
            rows = s.scalars(select(k).order_by(k.id))
            return [
                KeyRecord(
                    approver=r.approver,
                    version=r.version,
                    public_key=r.public_key,
                    added_at=r.added_at,
                    revoked=r.revoked_at is not None,
                    endorsement=r.endorsement,
                )
                for r in rows
            ]

    def keys_in_force(self) -> dict[str, list[str]]:
        """{approver: public keys that verify} (capplan_core/approval/key_trust.py): anchors
        (``approver_anchors``, from the environment) or the first key, and keys endorsed by
        another approver's key in force; never a revoked one."""
        return keys_in_force(
            self.approver_key_records(), store_id=self.store_id(), anchors=self.approver_anchors
        )

    def approver_public_keys(self, approver: str) -> list[str]:
        """``approver``'s keys in force, newest first (what decisions are verified with)."""
        return list(reversed(self.keys_in_force().get(approver, [])))

    def add_approver_public_key(
        self, approver: str, public_key: str, *, actor: str, endorsement: str | None = None
    ) -> int:
        """Register ``approver``'s key; its version. Refused (:class:`StoreError`, audited
        ``approver_key_refused``) unless it would be in force: an anchor, the store's first
        key when no anchor is set, or endorsed by another approver's key in force."""
        key = check_public_key(public_key)
        problem = registration_problem(
            self.approver_key_records(),
            approver=approver,
            public_key=key,
            endorsement=endorsement,
            store_id=self.store_id(),
            anchors=self.approver_anchors,
            now=self.now(),  # type: ignore[attr-defined]
        )
        if problem is not None:
            self.audit(  # type: ignore[attr-defined]
                "approver_key_refused",
                actor=actor,
                details=key_refused_details(approver, key, problem),
            )
            raise StoreError(problem)
        k = ApproverKeyRow
        with self._session.begin() as s:
            same = s.scalar(
                select(k.version).where(
                    k.approver == approver, k.public_key == key, k.revoked_at.is_(None)
                )
            )
            if same is not None:
                return int(same)
            version = (
                int(
                    s.scalar(
                        select(func.coalesce(func.max(k.version), 0)).where(k.approver == approver)
                    )
                    or 0
                )
                + 1
            )
            s.add(
                k(
                    approver=approver,
                    version=version,
                    public_key=key,
                    added_by=actor,
                    endorsement=endorsement,
                )
            )
            s.add(
                AuditEventRow(
                    actor=actor,
                    action="approver_key_added",
                    details=key_added_details(approver, version, key, endorsement),
                )
            )
            return version

    def revoke_approver_public_key(self, approver: str, version: int, *, actor: str) -> None:
        k = ApproverKeyRow
        with self._session.begin() as s:
            row = s.scalar(select(k).where(k.approver == approver, k.version == version))
            if row is None:
                raise StoreError(f"approver {approver!r} has no key version {version}")
            if row.revoked_at is not None:
                return
            row.revoked_at, row.revoked_by = utcnow(), actor
            s.add(
                AuditEventRow(
                    actor=actor,
                    action="approver_key_revoked",
                    details={"approver": approver, "version": version},
                )
            )
