"""SQLAlchemy 2 models for every entity of the domain model (docs/architecture.md).

Timestamps are stored as UTC and always read back as timezone-aware UTC, on SQLite too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from capplan_adapters.store.column_types import JsonType, UTCDateTime, utcnow
from capplan_core.planning.stored_plan import PlanStatus, StepStatus

# re-exported: the adapter's columns hold their values; the column types live in column_types
__all__ = ["JsonType", "PlanStatus", "StepStatus", "UTCDateTime", "utcnow"]


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JsonType}


class ScalingPolicyRow(Base):
    __tablename__ = "scaling_policy"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    mode: Mapped[str] = mapped_column(String(20))
    queue: Mapped[str] = mapped_column(String(200), index=True)
    target: Mapped[dict[str, Any]]
    slo_targets: Mapped[dict[str, Any]]
    scaling_constraints: Mapped[dict[str, Any]]
    spec: Mapped[dict[str, Any]]
    # the current version (policy_version.version of this name; migration 0005)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PolicyVersionRow(Base):
    """Every applied version of a policy, with who applied it and when (migration 0005)."""

    __tablename__ = "policy_version"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_policy_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]]
    sha256: Mapped[str] = mapped_column(String(64))
    applied_by: Mapped[str] = mapped_column(String(200))
    applied_at: Mapped[datetime] = mapped_column(default=utcnow)
    comment: Mapped[str] = mapped_column(Text, default="")
    # four eyes (migration 0006): a widening version waits, pending, for an approver's token
    pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    approved_by: Mapped[str | None] = mapped_column(String(200))
    approval: Mapped[str | None] = mapped_column(Text)
    approved_at: Mapped[datetime | None]


# the statuses of PlanStatus LIVE, as SQL for the partial unique index (migration 0003)
LIVE_PLAN_SQL = "status IN ('approved', 'applied')"


class CapacityPlanRow(Base):
    __tablename__ = "capacity_plan"
    __table_args__ = (
        # a retried store of the same run's plan finds the first one (migration 0003)
        UniqueConstraint("flow_run_id", "queue", name="uq_plan_flow_run_queue"),
        # at most one live plan per queue, enforced by the database (migration 0003)
        Index(
            "uq_plan_live_per_queue",
            "queue",
            unique=True,
            postgresql_where=text(LIVE_PLAN_SQL),
            sqlite_where=text(LIVE_PLAN_SQL),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("scaling_policy.id"), index=True)
    # the policy version the plan was made under; its steps execute under it (migration 0005)
    policy_version: Mapped[int | None] = mapped_column(Integer)
    queue: Mapped[str] = mapped_column(String(200), index=True)
    current_workers: Mapped[int | None] = mapped_column(Integer)
    target_workers: Mapped[int | None] = mapped_column(Integer)
    confidence: Mapped[float | None] = mapped_column(Float)
    slo_achievable: Mapped[bool | None] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(20), default=PlanStatus.PROPOSED)
    mode: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    as_of: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None]
    decision_comment: Mapped[str | None] = mapped_column(Text)
    skipped_reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)

    steps: Mapped[list[ScalingStepRow]] = relationship(
        back_populates="plan", order_by="ScalingStepRow.seq", cascade="all, delete-orphan"
    )
    simulation: Mapped[SimulationResultRow | None] = relationship(
        back_populates="plan", cascade="all, delete-orphan", uselist=False
    )


class ScalingStepRow(Base):
    __tablename__ = "scaling_step"
    __table_args__ = (UniqueConstraint("plan_id", "seq", name="uq_step_plan_seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("capacity_plan.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    execute_at: Mapped[datetime]
    from_workers: Mapped[int] = mapped_column(Integer)
    to_workers: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    confidence: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(20), default=StepStatus.PENDING, index=True)
    applied_at: Mapped[datetime | None]
    explanation: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # the run holding a claimed/applying step, and until when (migration 0002)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None]

    plan: Mapped[CapacityPlanRow] = relationship(back_populates="steps")


class TargetLeaseRow(Base):
    """One writer per scaling target (``kind:namespace/name``) at a time (migration 0002)."""

    __tablename__ = "target_lease"

    target: Mapped[str] = mapped_column(String(300), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100))
    lease_until: Mapped[datetime]


class SimulationResultRow(Base):
    __tablename__ = "simulation_result"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(
        ForeignKey("capacity_plan.id", ondelete="CASCADE"), unique=True
    )
    slo_achievement_rate: Mapped[float] = mapped_column(Float)
    max_backlog: Mapped[float] = mapped_column(Float)
    p95_latency: Mapped[float] = mapped_column(Float)
    utilization_range: Mapped[dict[str, Any]]
    replications: Mapped[int] = mapped_column(Integer)
    engine: Mapped[str] = mapped_column(String(20))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)

    plan: Mapped[CapacityPlanRow] = relationship(back_populates="simulation")


#: the numbers the planner reads from queue_metrics, in the covering index (migration 0004)
METRICS_HISTORY_COLUMNS = (
    "arrival_rate",
    "service_rate",
    "backlog",
    "workers",
    "service_time_p95",
    "service_time_scv",
)


class QueueMetricsRow(Base):
    __tablename__ = "queue_metrics"
    __table_args__ = (
        UniqueConstraint("queue_name", "recorded_at", name="uq_metrics_queue_time"),
        # one queue's span by an index-only scan (migration 0004): PostgreSQL INCLUDEs the
        # numbers; SQLite has no INCLUDE, there the index is a composite of all of them
        Index(
            "ix_metrics_history",
            "queue_name",
            "recorded_at",
            postgresql_include=list(METRICS_HISTORY_COLUMNS),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    queue_name: Mapped[str] = mapped_column(String(200))
    arrival_rate: Mapped[float | None] = mapped_column(Float)
    service_rate: Mapped[float | None] = mapped_column(Float)
    backlog: Mapped[float | None] = mapped_column(Float)
    workers: Mapped[float | None] = mapped_column(Float)
    service_time_p95: Mapped[float | None] = mapped_column(Float)
    service_time_scv: Mapped[float | None] = mapped_column(Float)
    recorded_at: Mapped[datetime]
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ForecastPointRow(Base):
    __tablename__ = "forecast_point"
    __table_args__ = (Index("ix_forecast_queue_time", "queue_name", "forecast_time"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int | None] = mapped_column(
        ForeignKey("capacity_plan.id", ondelete="CASCADE"), index=True
    )
    queue_name: Mapped[str] = mapped_column(String(200))
    forecast_time: Mapped[datetime]
    predicted_rate: Mapped[float] = mapped_column(Float)
    confidence_lower: Mapped[float] = mapped_column(Float)
    confidence_upper: Mapped[float] = mapped_column(Float)
    level: Mapped[float] = mapped_column(Float, default=0.8)
    model: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DataQualityReportRow(Base):
    __tablename__ = "data_quality_report"

    id: Mapped[int] = mapped_column(primary_key=True)
    queue: Mapped[str] = mapped_column(String(200), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    passed: Mapped[bool] = mapped_column(Boolean)
    report: Mapped[dict[str, Any]]


class AuditEventRow(Base):
    __tablename__ = "audit_event"
    # the newest row of an action for a queue (a strategy choice): migration 0009
    __table_args__ = (Index("ix_audit_action_queue_id", "action", "queue", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(50), index=True)
    plan_id: Mapped[int | None] = mapped_column(
        ForeignKey("capacity_plan.id", ondelete="SET NULL"), index=True
    )
    queue: Mapped[str | None] = mapped_column(String(200))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class StoreIdentityRow(Base):
    """The store's id, one row made by migration 0006: a signed decision names it, so two
    stores (sharing a Prefect server, say) never accept each other's decisions."""

    __tablename__ = "store_identity"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApproverKeyRow(Base):
    """An approver's Ed25519 public key, versioned per approver (migration 0006); the private
    key never reaches the store. A revoked key verifies nothing any more."""

    __tablename__ = "approver_public_key"
    __table_args__ = (UniqueConstraint("approver", "version", name="uq_approver_key_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    approver: Mapped[str] = mapped_column(String(63), index=True)
    version: Mapped[int] = mapped_column(Integer)
    public_key: Mapped[str] = mapped_column(String(64))
    added_by: Mapped[str] = mapped_column(String(200))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(200))
    # four eyes on keys (migration 0007): another approver's token vouching for this key
    endorsement: Mapped[str | None] = mapped_column(Text)
