"""policy versions: every applied policy spec kept, plans record the version they used

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

``policy_version`` holds each applied spec of a policy with who applied it and when;
``scaling_policy.version`` is the current one. ``capacity_plan.policy_version`` is the version
a plan was made under (its steps execute under it). Existing policies become version 1, applied
by ``migration``; existing plans keep a NULL version (they execute under version 1).
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    json_type = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    op.create_table(
        'policy_version',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('name', sa.String(200), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('spec', json_type, nullable=False),
        sa.Column('sha256', sa.String(64), nullable=False),
        sa.Column('applied_by', sa.String(200), nullable=False),
        sa.Column('applied_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('comment', sa.Text(), nullable=False, server_default=''),
        sa.UniqueConstraint('name', 'version', name='uq_policy_version'),
    )
    op.create_index('ix_policy_version_name', 'policy_version', ['name'])
    with op.batch_alter_table('scaling_policy', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=False,
                                      server_default='1'))
    with op.batch_alter_table('capacity_plan', schema=None) as batch_op:
        batch_op.add_column(sa.Column('policy_version', sa.Integer(), nullable=True))
    # every existing policy becomes its version 1 (its digest is computed on next apply)
    op.execute("INSERT INTO policy_version (name, version, spec, sha256, applied_by, "
               "applied_at, comment) SELECT name, 1, spec, '', 'migration', updated_at, "
               "'existing policy at migration 0005' FROM scaling_policy")


def downgrade() -> None:
    with op.batch_alter_table('capacity_plan', schema=None) as batch_op:
        batch_op.drop_column('policy_version')
    with op.batch_alter_table('scaling_policy', schema=None) as batch_op:
        batch_op.drop_column('version')
    op.drop_index('ix_policy_version_name', table_name='policy_version')
    op.drop_table('policy_version')
