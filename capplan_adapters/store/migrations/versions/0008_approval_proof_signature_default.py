"""approval.proof: signature becomes the default; stored policies keep what they meant

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

A policy that does not say how its approvers prove a decision now takes Ed25519 signatures
(no approver secret on any server: docs/security.md). A policy stored before
``approval.proof`` existed meant approval codes, so its stored documents (every version and
the current spec) get ``"proof": "code"`` spelled out. A version whose stored digest matched its
document gets the digest of the new document (the migration is trusted code, and no such
version can carry a signature: signing came with ``proof``); a version whose digest did not
match keeps it, so it stays refused at the write.
"""

import hashlib
import json

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_VERSIONS = sa.table(
    "policy_version",
    sa.column("id", sa.Integer()),
    sa.column("spec", _JSON),
    sa.column("sha256", sa.String(64)),
)
_POLICIES = sa.table("scaling_policy", sa.column("id", sa.Integer()), sa.column("spec", _JSON))


def _digest(doc: dict) -> str:
    # capplan_core/planning/policy_versions.document_digest as of this revision (frozen here)
    return hashlib.sha256(
        json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def _spelled_out(spec: dict) -> dict | None:
    """``spec`` with ``approval.proof: code``, or None when it already says a proof."""
    approval = spec.get("approval") or {}
    if "proof" in approval:
        return None
    return {**spec, "approval": {**approval, "proof": "code"}}


def upgrade() -> None:
    bind = op.get_bind()
    for row in bind.execute(sa.select(_VERSIONS.c.id, _VERSIONS.c.spec, _VERSIONS.c.sha256)):
        new = _spelled_out(dict(row.spec))
        if new is None:
            continue
        sha = row.sha256
        if sha and sha == _digest(dict(row.spec)):
            sha = _digest(new)
        bind.execute(
            _VERSIONS.update().where(_VERSIONS.c.id == row.id).values(spec=new, sha256=sha)
        )
    for pid, spec in bind.execute(sa.select(_POLICIES.c.id, _POLICIES.c.spec)):
        new = _spelled_out(dict(spec))
        if new is not None:
            bind.execute(_POLICIES.update().where(_POLICIES.c.id == pid).values(spec=new))


def downgrade() -> None:
    # the documents keep "proof": "code" spelled out: the old code reads it the same way
    pass
