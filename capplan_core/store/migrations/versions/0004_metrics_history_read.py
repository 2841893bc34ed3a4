"""metrics history: covering index for one queue's span

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

Reserved skeleton: filled in by the work on issue 11 (history from the store). Until then it changes nothing.
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
