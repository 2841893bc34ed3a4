"""Retention on SQLite and the real PostgreSQL: ``PlanStore.prune`` deletes old final plans with
everything hanging off them, keeps what a running system still reads, keeps audit rows longer
(with the pruned plan's id), and a dry run counts the same records and deletes none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from capplan_adapters.store.models import (
    AuditEventRow,
    CapacityPlanRow,
    DataQualityReportRow,
    ForecastPointRow,
    QueueMetricsRow,
    ScalingStepRow,
    SimulationResultRow,
)
from capplan_adapters.store.repo import PlanStore
from capplan_core.planning.stored_plan import ForecastPoint
from capplan_core.policy import parse_policies
from capplan_core.retention import RetentionLimits, cutoffs
from tests.integration.store.plan_seed import emails_draft

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=40)  # past the 30-day plan limit
THUMBS = parse_policies(
    {
        "policies": [
            {
                "name": "thumbs",
                "queue": "thumbs",
                "mode": "auto",
                "target": {"name": "thumb-worker"},
                "slo": {"wait_p95_seconds": 30},
            }
        ]
    }
)[0]
TABLES = (
    CapacityPlanRow,
    ScalingStepRow,
    SimulationResultRow,
    ForecastPointRow,
    DataQualityReportRow,
    AuditEventRow,
    QueueMetricsRow,
)


def _set(
    store: PlanStore,
    plan_id: int,
    status: str,
    created_at: datetime,
    steps: list[tuple[str, datetime | None]],
) -> None:
    """Put a stored plan into the state a long-running system leaves it in."""
    with store.session() as s, s.begin():
        s.execute(
            update(CapacityPlanRow)
            .where(CapacityPlanRow.id == plan_id)
            .values(status=status, created_at=created_at)
        )
        ids = s.scalars(
            select(ScalingStepRow.id)
            .where(ScalingStepRow.plan_id == plan_id)
            .order_by(ScalingStepRow.seq)
        ).all()
        for step_id, (st, applied_at) in zip(ids, steps, strict=False):
            s.execute(
                update(ScalingStepRow)
                .where(ScalingStepRow.id == step_id)
                .values(status=st, applied_at=applied_at)
            )


def _counts(store: PlanStore) -> dict[str, int]:
    with store.session() as s:
        return {
            t.__tablename__: int(s.scalar(select(func.count()).select_from(t)) or 0) for t in TABLES
        }


def _seed(store: PlanStore) -> dict[str, int]:
    store.apply_policies([THUMBS], actor="test")
    cancelled: list[tuple[str, datetime | None]] = [("cancelled", None)] * 3
    ids: dict[str, int] = {}
    ids["t_old"] = store.create_plan(emails_draft(policy_name="thumbs", queue="thumbs"))
    _set(store, ids["t_old"], "superseded", OLD - timedelta(days=1), cancelled)
    ids["t_newest"] = store.create_plan(emails_draft(policy_name="thumbs", queue="thumbs"))
    _set(store, ids["t_newest"], "rejected", OLD, cancelled)
    ids["final"] = store.create_plan(emails_draft())
    _set(
        store,
        ids["final"],
        "superseded",
        OLD,
        [("applied", NOW - timedelta(days=45)), ("cancelled", None), ("cancelled", None)],
    )
    ids["open"] = store.create_plan(emails_draft())
    _set(store, ids["open"], "superseded", OLD, [("applying", None), ("cancelled", None)])
    ids["last_scale"] = store.create_plan(emails_draft())
    _set(
        store,
        ids["last_scale"],
        "superseded",
        OLD,
        [("applied", NOW - timedelta(days=39)), ("cancelled", None), ("cancelled", None)],
    )
    ids["live"] = store.create_plan(emails_draft())
    _set(store, ids["live"], "approved", OLD, [])
    ids["young"] = store.create_plan(emails_draft())
    _set(store, ids["young"], "rejected", NOW - timedelta(days=1), cancelled)
    # audit: a row about the plan that goes (kept, 40 days < 365), a very old one (goes)
    store.audit(
        "note",
        actor="test",
        plan_id=ids["final"],
        queue="emails",
        details={"why": "kept longer than its plan"},
    )
    store.audit("note", actor="test", queue="emails", details={"why": "past the audit limit"})
    store.save_forecast(None, [ForecastPoint("emails", OLD, 1.0, 0.5, 1.5, 0.8, "ewma")])
    store.save_forecast(None, [ForecastPoint("emails", NOW, 1.0, 0.5, 1.5, 0.8, "ewma")])
    store.record_metrics(
        [
            {
                "queue_name": "emails",
                "recorded_at": NOW - timedelta(days=d),
                "arrival_rate": 1.0,
                "service_rate": 1.0,
                "backlog": 0.0,
                "workers": 1.0,
                "extra": {},
            }
            for d in (60, 10)
        ]
    )
    with store.session() as s, s.begin():
        s.execute(
            update(AuditEventRow)
            .where(AuditEventRow.details["why"].as_string() == "past the audit limit")
            .values(at=NOW - timedelta(days=400))
        )
        s.execute(update(AuditEventRow).where(AuditEventRow.plan_id == ids["final"]).values(at=OLD))
        s.execute(
            update(ForecastPointRow)
            .where(ForecastPointRow.plan_id.is_(None), ForecastPointRow.forecast_time == OLD)
            .values(created_at=OLD)
        )
        newest_report = s.scalar(select(func.max(DataQualityReportRow.id)))
        s.execute(
            update(DataQualityReportRow)
            .where(DataQualityReportRow.id != newest_report)
            .values(created_at=OLD)
        )
    return ids


def test_prune_keeps_what_a_running_system_reads_and_deletes_the_rest(store: PlanStore) -> None:
    ids = _seed(store)
    audit_final = {e.id for e in store.audit_events(plan_id=ids["final"])}
    assert audit_final
    last_written = store.last_written_workers("emails")
    cut = cutoffs(NOW, RetentionLimits())  # 30 days of plans, 365 of audit, 35 of metrics
    before = _counts(store)

    dry = store.prune(cut, dry_run=True)
    assert _counts(store) == before  # a dry run deletes nothing
    expected = {
        "plans": 2,
        "steps": 6,
        "simulations": 2,
        "forecast_points": 4 + 4 + 1,
        "quality_reports": 6,
        "audit_events": 1,
        "queue_metrics": 1,
    }
    assert dry.as_dict()["pruned"] == expected
    assert dry.plans_kept_old == 4  # open, last_scale, live, t_newest

    done = store.prune(cut, batch_size=2)  # several batches
    assert done.as_dict()["pruned"] == expected
    assert done.plans_kept_old == 4
    after = _counts(store)
    assert {k: before[k] - after[k] for k in before} == {
        "capacity_plan": 2,
        "scaling_step": 6,
        "simulation_result": 2,
        "forecast_point": 9,
        "data_quality_report": 6,
        "audit_event": 1,
        "queue_metrics": 1,
    }
    left = {p.id for q in ("emails", "thumbs") for p in store.list_plans(queue=q)}
    assert left == {ids[k] for k in ("t_newest", "open", "last_scale", "live", "young")}
    # the pruned plan's audit rows stay, unlinked, with its id in their details
    with store.session() as s:
        kept = s.scalars(select(AuditEventRow).where(AuditEventRow.id.in_(audit_final))).all()
    assert {e.id for e in kept} == audit_final
    assert all(e.plan_id is None and e.details["plan_id"] == ids["final"] for e in kept)
    # the dry-run scaler's live count still comes from the plan that holds the last scale
    assert store.last_written_workers("emails") == last_written == 15
    # the young metrics row and the young unlinked forecast point stay
    assert len(store.metrics("emails")) == 1
    assert store.prune(cut).as_dict()["pruned"] == dict.fromkeys(expected, 0)
