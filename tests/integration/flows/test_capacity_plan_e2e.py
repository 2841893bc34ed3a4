"""capacity-plan on the demo data against a real Prefect server (Prefect's test harness)."""

from __future__ import annotations

import pytest

from capplan_app.bootstrap import plan_store
from capplan_cli.approvals import wait_for_paused_plan
from capplan_core.planning.stored_plan import PlanStatus, StepStatus
from tests.approvers import decide
from tests.integration.flows.helpers import FlowThread, state_names
from tests.invariants import assert_applied_only_when_due

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_demo_cycle_pauses_manual_auto_executes_advisory_never_and_bad_rows_reported(
    prefect_server, capplan_env
):
    run = FlowThread()
    store = plan_store()
    plan = wait_for_paused_plan(
        store, "emails", since=run.started, timeout_s=600, stop=lambda: not run.alive()
    )
    assert plan is not None, "the manual queue's run never paused"
    assert plan.status == PlanStatus.PROPOSED
    decide(store, plan.id, "approve", "alice", comment="looks right")
    results = run.join()

    # manual: approved by the named person in its own approve-plan run (the one that paused)
    emails = store.get_plan(plan.id)
    assert emails.status in (PlanStatus.APPROVED, PlanStatus.APPLIED)
    assert emails.decided_by == "alice"
    actions = [(e.action, e.actor) for e in store.audit_events(plan_id=plan.id)]
    assert ("approved", "alice") in actions
    assert "Paused" in state_names(emails.flow_run_id)
    assert_applied_only_when_due(store, emails.id)

    # auto: approved by capplan itself, never paused
    thumbs = store.get_plan(results["thumbnails"]["id"])
    assert thumbs.decided_by == "capplan-auto", results["thumbnails"]
    assert thumbs.status in (PlanStatus.APPROVED, PlanStatus.APPLIED)
    assert "Paused" not in state_names(thumbs.flow_run_id)
    assert_applied_only_when_due(store, thumbs.id)

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

    from capplan_adapters.store.models import DataQualityReportRow

    with store.session() as s:
        rep = s.scalars(
            select(DataQualityReportRow).where(DataQualityReportRow.queue == "emails")
        ).one()
    by = {(c["expectation"], c["column"]): c for c in rep.report["checks"]}
    neg = by[("expect_column_values_to_be_between", "arrival_rate")]
    assert neg["unexpected_count"] == 3 and neg["sample"] == [-1.0, -1.0, -1.0]
    assert by[("expect_column_values_to_not_be_null", "service_rate")]["unexpected_count"] == 1
    assert by[("expect_column_values_to_be_unique", "timestamp")]["unexpected_count"] >= 2


def test_rejection_applies_nothing(prefect_server, capplan_env):
    run = FlowThread(policies=["emails"])
    store = plan_store()
    plan = wait_for_paused_plan(
        store, "emails", since=run.started, timeout_s=600, stop=lambda: not run.alive()
    )
    assert plan is not None
    decide(store, plan.id, "reject", "bob", comment="not today")
    results = run.join()
    assert results["emails"]["status"] == "rejected"
    got = store.get_plan(plan.id)
    assert got.decided_by == "bob" and got.decision_comment == "not today"
    assert store.audit_events(plan_id=plan.id, action="scale") == []
    assert {s.status for s in got.steps} <= {StepStatus.CANCELLED}
