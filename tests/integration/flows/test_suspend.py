"""A manual policy with approval.suspend, deployed: the child run suspends (its process exits),
is resumed through the API with the approval, restarts, finds its plan and executes it once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from capplan_app.bootstrap import DEMO_METRICS, DEMO_POLICIES, plan_store
from capplan_core.planning.stored_plan import PlanStatus
from capplan_core.policy import parse_policies
from tests.approvers import decide

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _policy(tmp_path: Path):
    doc = yaml.safe_load(DEMO_POLICIES.read_text())
    emails = next(p for p in doc["policies"] if p["name"] == "emails")
    emails["approval"] = {"suspend": True, "timeout_seconds": 3600}
    return parse_policies({"policies": [emails]})[0]


async def _runner_pass(runner) -> None:
    await asyncio.wait_for(runner.start(run_once=True), timeout=600)


def test_suspended_approval_releases_the_run_and_resumes_to_execute(
    prefect_server, capplan_env, tmp_path
):
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.runner import Runner

    from capplan_core.utc import utc_datetime
    from flows.plan_queue import plan_queue
    from tasks.stages import file_data_end
    from tests.approvers import with_approvers

    policy = with_approvers([_policy(tmp_path)])[0]
    plan_store().apply_policies([policy], actor="test")
    runner = Runner(name="test-suspend", query_seconds=1, pause_on_shutdown=False)
    runner.add_flow(plan_queue, name="plan-queue")
    as_of = utc_datetime(file_data_end(str(DEMO_METRICS)))
    run = run_deployment("plan-queue/plan-queue", timeout=0, parameters={
        "policy": policy.name, "metrics_path": str(DEMO_METRICS),
        "as_of": as_of.isoformat(), "approval": "policy", "approval_poll_s": 1})
    asyncio.run(_runner_pass(runner))  # runs until the suspension ends the process

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run.id).state
    assert state.is_paused() and state.name == "Suspended", state
    store = plan_store()
    plan = store.plan_for_flow_run(str(run.id))
    assert plan is not None and plan.status == PlanStatus.PROPOSED

    decide(store, plan.id, "approve", "erin", comment="later")
    runner2 = Runner(name="test-suspend-2", query_seconds=1, pause_on_shutdown=False)
    runner2.add_flow(plan_queue, name="plan-queue")
    asyncio.run(_runner_pass(runner2))  # the resumed run restarts and finishes

    with get_client(sync_client=True) as client:
        final = client.read_flow_run(run.id).state
    assert final.is_completed(), final
    got = store.get_plan(plan.id)
    assert got.decided_by == "erin"
    assert got.status in (PlanStatus.APPROVED, PlanStatus.APPLIED)
    # restarted run re-used its plan: one plan for the queue, first step applied once
    assert [p.id for p in store.list_plans(queue="emails")] == [plan.id]
    assert len(store.audit_events(plan_id=plan.id, action="approved")) == 1
    assert len(store.audit_events(plan_id=plan.id, action="scale")) <= 1
