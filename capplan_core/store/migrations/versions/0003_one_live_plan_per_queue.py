"""one live plan per queue, idempotent plan storage

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

Reserved skeleton: filled in by the work on issue 12 (plans per queue). Until then it changes nothing.
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
