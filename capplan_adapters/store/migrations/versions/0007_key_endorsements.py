"""four eyes on approver keys: a key's endorsement

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

``approver_public_key.endorsement`` keeps the token another approver signed to vouch for the
key (``capplan approvals endorse-key``); a key without a valid one is in force only as a trust
anchor or the store's first key (capplan_core/approval/key_trust.py, docs/security.md).
"""

from alembic import op
import sqlalchemy as sa

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("approver_public_key", schema=None) as batch_op:
        batch_op.add_column(sa.Column("endorsement", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("approver_public_key", schema=None) as batch_op:
        batch_op.drop_column("endorsement")
