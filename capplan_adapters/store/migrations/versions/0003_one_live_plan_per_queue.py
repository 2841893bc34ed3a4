"""one live plan per queue, idempotent plan storage

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

- ``uq_plan_live_per_queue``: a partial unique index, at most one plan per queue in a live
  status (approved, applied). Older duplicates (possible before this revision) are superseded
  first, newest kept, and audited.
- ``uq_plan_flow_run_queue``: unique (flow_run_id, queue), so a retried store of one run's
  plan returns the plan already stored. Older duplicates (orphans of retried stores) lose their
  flow_run_id (kept in an ``orphan_plan`` audit event); the newest keeps it.
"""
from datetime import UTC, datetime

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

LIVE_PLAN_SQL = "status IN ('approved', 'applied')"
_audit = sa.table(
    "audit_event", sa.column("at", sa.DateTime(timezone=True)), sa.column("actor", sa.String),
    sa.column("action", sa.String), sa.column("plan_id", sa.Integer),
    sa.column("queue", sa.String),
    sa.column("details", sa.JSON().with_variant(JSONB(), "postgresql")))


def _audit_row(conn: sa.Connection, action: str, plan_id: int, queue: str,
               details: dict[str, str]) -> None:
    conn.execute(_audit.insert().values(at=datetime.now(UTC), actor="capplan-migration",
                                        action=action, plan_id=plan_id, queue=queue,
                                        details=details))


def _dedupe_live(conn: sa.Connection) -> None:
    rows = conn.execute(sa.text(
        f"SELECT id, queue FROM capacity_plan WHERE {LIVE_PLAN_SQL} ORDER BY queue, id DESC"
    )).all()
    seen: set[str] = set()
    for plan_id, queue in rows:
        if queue not in seen:
            seen.add(queue)
            continue
        conn.execute(sa.text("UPDATE capacity_plan SET status = 'superseded' WHERE id = :i"),
                     {"i": plan_id})
        conn.execute(sa.text("UPDATE scaling_step SET status = 'cancelled' "
                             "WHERE plan_id = :i AND status = 'pending'"), {"i": plan_id})
        _audit_row(conn, "superseded", plan_id, queue,
                   {"reason": "migration 0003: one live plan per queue"})


def _dedupe_flow_runs(conn: sa.Connection) -> None:
    rows = conn.execute(sa.text(
        "SELECT id, flow_run_id, queue FROM capacity_plan WHERE flow_run_id IS NOT NULL "
        "ORDER BY flow_run_id, queue, id DESC"
    )).all()
    seen: set[tuple[str, str]] = set()
    for plan_id, run_id, queue in rows:
        if (run_id, queue) not in seen:
            seen.add((run_id, queue))
            continue
        conn.execute(sa.text("UPDATE capacity_plan SET flow_run_id = NULL WHERE id = :i"),
                     {"i": plan_id})
        _audit_row(conn, "orphan_plan", plan_id, queue, {"orphan_of_flow_run": run_id})


def upgrade() -> None:
    conn = op.get_bind()
    _dedupe_live(conn)
    _dedupe_flow_runs(conn)
    with op.batch_alter_table("capacity_plan") as batch:
        batch.create_unique_constraint("uq_plan_flow_run_queue", ["flow_run_id", "queue"])
    op.create_index("uq_plan_live_per_queue", "capacity_plan", ["queue"], unique=True,
                    postgresql_where=sa.text(LIVE_PLAN_SQL), sqlite_where=sa.text(LIVE_PLAN_SQL))


def downgrade() -> None:
    op.drop_index("uq_plan_live_per_queue", table_name="capacity_plan")
    with op.batch_alter_table("capacity_plan") as batch:
        batch.drop_constraint("uq_plan_flow_run_queue", type_="unique")
