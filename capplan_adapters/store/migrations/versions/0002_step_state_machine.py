"""step state machine: claims, leases, target locks

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

A step's claim (``claimed_by``, ``lease_until``) and the one-writer-per-target lease table
(docs/reliability.md). ``batch_alter_table`` keeps SQLite working.
"""
from alembic import op
import sqlalchemy as sa
import capplan_adapters.store.models

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('scaling_step', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column(
            'lease_until', capplan_adapters.store.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_scaling_step_status', ['status'], unique=False)
    op.create_table(
        'target_lease',
        sa.Column('target', sa.String(length=300), nullable=False),
        sa.Column('holder', sa.String(length=100), nullable=False),
        sa.Column('lease_until', capplan_adapters.store.models.UTCDateTime(timezone=True),
                  nullable=False),
        sa.PrimaryKeyConstraint('target'),
    )


def downgrade() -> None:
    op.drop_table('target_lease')
    with op.batch_alter_table('scaling_step', schema=None) as batch_op:
        batch_op.drop_index('ix_scaling_step_status')
        batch_op.drop_column('lease_until')
        batch_op.drop_column('claimed_by')
