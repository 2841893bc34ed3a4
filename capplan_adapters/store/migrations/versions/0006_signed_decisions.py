"""signed decisions: the store's id, the approvers' public keys, pending policy versions

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

``store_identity`` holds one row, the store's id (a random UUID made here): a signed decision
names the store it was made for, so a decision signed for one store is refused by another.
``approver_public_key`` keeps each approver's Ed25519 public keys, versioned; the private keys
never reach the store (docs/security.md). ``policy_version`` gains ``pending`` (a version
that widens authority, waiting for a current approver's signature), ``approved_by``,
``approval`` (the signed token) and ``approved_at``.
"""

import uuid
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    identity = op.create_table(
        "store_identity",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.bulk_insert(identity, [{"id": uuid.uuid4().hex, "created_at": datetime.now(timezone.utc)}])
    op.create_table(
        "approver_public_key",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("approver", sa.String(63), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("added_by", sa.String(200), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(200), nullable=True),
        sa.UniqueConstraint("approver", "version", name="uq_approver_key_version"),
    )
    op.create_index("ix_approver_public_key_approver", "approver_public_key", ["approver"])
    # four eyes: a version that widens authority waits, pending, for an approver's signature
    with op.batch_alter_table("policy_version", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("pending", sa.Boolean(), nullable=False, server_default=sa.text("false"))
        )
        batch_op.add_column(sa.Column("approved_by", sa.String(200), nullable=True))
        batch_op.add_column(sa.Column("approval", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("policy_version", schema=None) as batch_op:
        for column in ("approved_at", "approval", "approved_by", "pending"):
            batch_op.drop_column(column)
    op.drop_index("ix_approver_public_key_approver", table_name="approver_public_key")
    op.drop_table("approver_public_key")
    op.drop_table("store_identity")
