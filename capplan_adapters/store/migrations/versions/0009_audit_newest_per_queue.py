"""audit: the newest row of an action for a queue, by index

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

Every plan of a ``scaling.strategy: auto`` policy reads the newest ``strategy-chosen`` audit
row of its queue (``PlanRepository.latest_audit_event``): one per queue per cycle, 1,000 a
cycle at scale, over a table that gains a row per queue a day and keeps a year. The index
``(action, queue, id)`` answers it with one index probe (``ORDER BY id DESC LIMIT 1``) instead
of walking every row of the action.
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_action_queue_id", "audit_event", ["action", "queue", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_action_queue_id", table_name="audit_event")
