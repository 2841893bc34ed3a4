"""The tables the lean read path reads, as SQLAlchemy Core ``Table`` objects (no ORM).

Reading plans, their audit and the current policies through these loads neither the ORM nor
the models' mapper configuration, which is most of what ``capplan plans list`` paid to start
(issue 26). They hold only what a read needs (names and types; the schema, its keys and
indexes, is the models' and the migrations'): a test checks each column against the model's.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Integer, MetaData, String, Table, Text

from capplan_adapters.store.column_types import JsonType, UTCDateTime

metadata = MetaData()

capacity_plan = Table(
    "capacity_plan",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("policy_id", Integer),
    Column("policy_version", Integer),
    Column("queue", String(200)),
    Column("current_workers", Integer),
    Column("target_workers", Integer),
    Column("confidence", Float),
    Column("slo_achievable", Boolean),
    Column("status", String(20)),
    Column("mode", String(20)),
    Column("created_at", UTCDateTime()),
    Column("as_of", UTCDateTime()),
    Column("expires_at", UTCDateTime()),
    Column("flow_run_id", String(64)),
    Column("decided_by", String(200)),
    Column("decided_at", UTCDateTime()),
    Column("decision_comment", Text),
    Column("skipped_reason", Text),
    Column("details", JsonType),
)

scaling_step = Table(
    "scaling_step",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("plan_id", Integer),
    Column("seq", Integer),
    Column("execute_at", UTCDateTime()),
    Column("from_workers", Integer),
    Column("to_workers", Integer),
    Column("reason", Text),
    Column("confidence", Float),
    Column("status", String(20)),
    Column("applied_at", UTCDateTime()),
    Column("explanation", JsonType),
    Column("claimed_by", String(100)),
    Column("lease_until", UTCDateTime()),
)

simulation_result = Table(
    "simulation_result",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("plan_id", Integer),
    Column("slo_achievement_rate", Float),
    Column("max_backlog", Float),
    Column("p95_latency", Float),
    Column("utilization_range", JsonType),
    Column("replications", Integer),
    Column("engine", String(20)),
    Column("details", JsonType),
)

audit_event = Table(
    "audit_event",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime()),
    Column("actor", String(200)),
    Column("action", String(50)),
    Column("plan_id", Integer),
    Column("queue", String(200)),
    Column("details", JsonType),
)

scaling_policy = Table(
    "scaling_policy",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200)),
    Column("version", Integer),
)

policy_version = Table(
    "policy_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200)),
    Column("version", Integer),
    Column("spec", JsonType),
    Column("sha256", String(64)),
    Column("applied_by", String(200)),
    Column("applied_at", UTCDateTime()),
    Column("comment", Text),
    Column("pending", Boolean),
    Column("approved_by", String(200)),
    Column("approval", Text),
    Column("approved_at", UTCDateTime()),
)
