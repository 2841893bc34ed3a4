"""metrics history: covering index for one queue's span

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

The planner reads one queue's last weeks of ``queue_metrics``. ``service_time_p95`` and
``service_time_scv`` move out of the ``extra`` JSON into real columns (backfilled), so one index
holds everything that read needs: on PostgreSQL ``(queue_name, recorded_at) INCLUDE (...)``
(an index-only scan, no heap page per row), on SQLite a composite of all the columns. The old
``ix_metrics_queue_time`` duplicated the index behind ``uq_metrics_queue_time``; it is dropped.
"""
from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

NUMBERS = ["arrival_rate", "service_rate", "backlog", "workers",
           "service_time_p95", "service_time_scv"]
PROMOTED = ["service_time_p95", "service_time_scv"]


def upgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table('queue_metrics', schema=None) as batch_op:
        for col in PROMOTED:
            batch_op.add_column(sa.Column(col, sa.Float(), nullable=True))
        batch_op.drop_index('ix_metrics_queue_time')
    for col in PROMOTED:
        if pg:  # jsonb: a JSON number casts to float8, a JSON null to NULL
            op.execute(f"UPDATE queue_metrics SET {col} = (extra->>'{col}')::float8 "
                       f"WHERE extra ? '{col}'")
        else:
            op.execute(f"UPDATE queue_metrics SET {col} = CAST(json_extract(extra, '$.{col}') "
                       f"AS REAL) WHERE json_extract(extra, '$.{col}') IS NOT NULL")
    if pg:
        op.create_index('ix_metrics_history', 'queue_metrics', ['queue_name', 'recorded_at'],
                        postgresql_include=NUMBERS)
    else:
        op.create_index('ix_metrics_history', 'queue_metrics',
                        ['queue_name', 'recorded_at', *NUMBERS])


def downgrade() -> None:
    op.drop_index('ix_metrics_history', table_name='queue_metrics')
    with op.batch_alter_table('queue_metrics', schema=None) as batch_op:
        batch_op.create_index('ix_metrics_queue_time', ['queue_name', 'recorded_at'],
                              unique=False)
        for col in PROMOTED:
            batch_op.drop_column(col)
