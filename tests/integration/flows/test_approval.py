"""Approval end to end against a real Prefect server: CLI decisions, one decision per plan,
timeouts expire plans, narrowing limits, and lifecycle events."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from capplan_app.bootstrap import DEMO_POLICIES, plan_store
from capplan_cli.approvals import wait_for_paused_plan
from capplan_cli.main import app
from capplan_core.planning.stored_plan import PlanStatus, StepStatus
from tests.approvers import key_for
from tests.integration.flows.helpers import FlowThread, plan_events

pytestmark = [pytest.mark.integration, pytest.mark.slow]
runner = CliRunner()


def _emails_policy(tmp_path: Path, **approval) -> Path:
    doc = yaml.safe_load(DEMO_POLICIES.read_text())
    emails = next(p for p in doc["policies"] if p["name"] == "emails")
    emails["approval"] = approval
    out = tmp_path / "policies.yaml"
    out.write_text(yaml.safe_dump({"policies": [emails]}))
    return out


def test_cli_approve_resumes_run_second_decision_refused_and_events_emitted(
    prefect_server, capplan_env
):
    run = FlowThread(policies=["emails"])
    store = plan_store()
    plan = wait_for_paused_plan(
        store, "emails", since=run.started, timeout_s=600, stop=lambda: not run.alive()
    )
    assert plan is not None
    res = runner.invoke(
        app,
        [
            "plans",
            "approve",
            str(plan.id),
            "--by",
            "carol",
            "--comment",
            "via cli",
            "--max-workers",
            str(plan.current_workers + 1),
        ],
        env={"CAPPLAN_APPROVER_KEY": key_for("carol")},
    )
    assert res.exit_code == 0, res.output
    run.join()
    got = store.get_plan(plan.id)
    assert got.status in (PlanStatus.APPROVED, PlanStatus.APPLIED)
    assert (got.decided_by, got.decision_comment) == ("carol", "via cli")
    # the approver's lower max_workers caps what is applied
    for ev in store.audit_events(plan_id=plan.id, action="scale"):
        assert ev.details["to_workers"] <= plan.current_workers + 1

    again = runner.invoke(
        app,
        ["plans", "reject", str(plan.id), "--by", "dave"],
        env={"CAPPLAN_APPROVER_KEY": key_for("dave")},
    )
    assert again.exit_code == 1
    assert f"plan {plan.id} is already" in again.output and "by carol" in again.output
    assert store.get_plan(plan.id).decided_by == "carol"

    names = plan_events(plan.id, expect={"capplan.plan.awaiting-approval", "capplan.plan.approved"})
    assert {"capplan.plan.awaiting-approval", "capplan.plan.approved"} <= names


def test_undecided_plan_expires_after_its_timeout(prefect_server, capplan_env, tmp_path):
    policy_file = _emails_policy(tmp_path, timeout_seconds=4)
    run = FlowThread(policy_path=str(policy_file))
    results = run.join()
    assert results["emails"]["status"] == "expired"
    store = plan_store()
    plan = store.get_plan(results["emails"]["id"])
    assert plan.decided_by == "capplan"
    assert {s.status for s in plan.steps} <= {StepStatus.CANCELLED}
    assert [e.action for e in store.audit_events(plan_id=plan.id)] == ["expired"]
    assert store.audit_events(plan_id=plan.id, action="scale") == []
    assert "capplan.plan.expired" in plan_events(plan.id, expect={"capplan.plan.expired"})


def test_cli_refuses_unknown_plan_and_plan_not_waiting(prefect_server, capplan_env):
    res = runner.invoke(app, ["plans", "approve", "999999", "--by", "x"])
    assert res.exit_code == 1 and "no plan with id 999999" in res.output
