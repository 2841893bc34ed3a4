"""capacity-plan on the demo data against a real Prefect server (Prefect's test harness)."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from capplan_cli.approvals import resume_with_decision, wait_for_paused_plan
from capplan_core.store.models import PlanStatus, StepStatus
from capplan_core.wiring import get_store

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class FlowThread:
    """Run the capacity-plan flow in a thread, as a scheduled run would, and collect it."""

    def __init__(self, **params: Any) -> None:
        from flows.capacity_plan import capacity_plan

        self.box: dict[str, Any] = {}

        def run() -> None:
            try:
                self.box["results"] = asyncio.run(capacity_plan(approval_poll_s=1, **params))
            except BaseException as err:  # noqa: BLE001 - re-raised in join
                self.box["error"] = err

        self.started = datetime.now(UTC)
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def alive(self) -> bool:
        return self.thread.is_alive()

    def join(self, timeout_s: float = 600) -> dict[str, dict[str, Any]]:
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), "capacity-plan did not finish"
        if "error" in self.box:
            raise self.box["error"]
        return {r["queue"]: r for r in self.box["results"]}


def _state_names(flow_run_id: str) -> list[str]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return [s.name for s in client.read_flow_run_states(UUID(flow_run_id))]


def test_demo_cycle_pauses_manual_auto_executes_advisory_never_and_bad_rows_reported(
    prefect_server, capplan_env
):
    run = FlowThread()
    store = get_store()
    plan = wait_for_paused_plan(store, "emails", since=run.started, timeout_s=600,
                                stop=lambda: not run.alive())
    assert plan is not None, "the manual queue's run never paused"
    assert plan.status == PlanStatus.PROPOSED
    resume_with_decision(store, plan.id, decision="approve", approver="alice",
                         comment="looks right")
    results = run.join()

    # manual: approved by the named person, first step applied by the dry-run scaler
    emails = store.get_plan(plan.id)
    assert emails.status in (PlanStatus.APPROVED, PlanStatus.APPLIED)
    assert emails.decided_by == "alice"
    actions = [(e.action, e.actor) for e in store.audit_events(plan_id=plan.id)]
    assert ("approved", "alice") in actions
    scale = store.audit_events(plan_id=plan.id, action="scale")
    first = emails.steps[0]
    if first.to_workers != emails.current_workers:
        assert len(scale) == 1
        assert scale[0].details["scaler"] == "DryRunScaler"
        assert scale[0].details["to_workers"] == first.to_workers
    assert first.status in (StepStatus.APPLIED, StepStatus.NOOP)
    scheduled = store.audit_events(plan_id=plan.id, action="step_scheduled")
    assert len(scheduled) == len(emails.steps) - 1
    assert "Paused" in _state_names(emails.flow_run_id)

    # auto: approved by capplan itself, never paused
    thumbs = store.get_plan(results["thumbnails"]["id"])
    assert thumbs.decided_by == "capplan-auto", results["thumbnails"]
    assert thumbs.status in (PlanStatus.APPROVED, PlanStatus.APPLIED)
    assert "Paused" not in _state_names(thumbs.flow_run_id)
    assert thumbs.steps[0].status in (StepStatus.APPLIED, StepStatus.NOOP)

    # advisory: planned and simulated, never executed
    reports = store.get_plan(results["reports"]["id"])
    assert reports.status == PlanStatus.PROPOSED
    assert reports.simulation is not None
    assert store.audit_events(plan_id=reports.id, action="scale") == []
    assert {s.status for s in reports.steps} <= {StepStatus.PENDING}

    # stale queue: skipped by the freshness expectation, with the reason
    legacy = results["legacy-sync"]
    assert legacy["status"] == "skipped"
    assert "freshness" in legacy["skipped_reason"]

    # the bad rows of emails were reported by the data-quality stage
    from sqlalchemy import select

    from capplan_core.store.models import DataQualityReportRow

    with store.session() as s:
        rep = s.scalars(select(DataQualityReportRow).where(
            DataQualityReportRow.queue == "emails")).one()
    by = {(c["expectation"], c["column"]): c for c in rep.report["checks"]}
    neg = by[("expect_column_values_to_be_between", "arrival_rate")]
    assert neg["unexpected_count"] == 3 and neg["sample"] == [-1.0, -1.0, -1.0]
    assert by[("expect_column_values_to_not_be_null", "service_rate")]["unexpected_count"] == 1
    assert by[("expect_column_values_to_be_unique", "timestamp")]["unexpected_count"] >= 2


def test_rejection_applies_nothing(prefect_server, capplan_env):
    run = FlowThread(policies=["emails"])
    store = get_store()
    plan = wait_for_paused_plan(store, "emails", since=run.started, timeout_s=600,
                                stop=lambda: not run.alive())
    assert plan is not None
    resume_with_decision(store, plan.id, decision="reject", approver="bob", comment="not today")
    results = run.join()
    assert results["emails"]["status"] == "rejected"
    got = store.get_plan(plan.id)
    assert got.decided_by == "bob" and got.decision_comment == "not today"
    assert store.audit_events(plan_id=plan.id, action="scale") == []
    assert {s.status for s in got.steps} <= {StepStatus.CANCELLED}
