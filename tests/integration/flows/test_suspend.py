"""A manual policy with approval.suspend: the plan's approve-plan run (a deployment run)
suspends (its process exits), is resumed through the API with the approval, restarts, finds
its plan still waiting, and decides and executes it once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import UUID

import pytest
import yaml

from capplan_app.bootstrap import DEMO_POLICIES, plan_store
from capplan_core.planning.stored_plan import PlanStatus
from capplan_core.policy import parse_policies
from tests.approvers import decide
from tests.invariants import assert_applied_only_when_due

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
    from prefect.runner import Runner

    from flows.approve_plan import approve_plan
    from flows.plan_queue import plan_queue
    from tests.approvers import with_approvers
    from tests.integration.flows.helpers import recent_demo_metrics

    policy = with_approvers([_policy(tmp_path)])[0]
    plan_store().apply_policies([policy], actor="test")
    runner = Runner(name="test-suspend", query_seconds=1, pause_on_shutdown=False)
    runner.add_flow(approve_plan, name="approve-plan")  # the deployment the cycle starts
    # the planning run stores the plan, starts its approve-plan run and finishes at once
    planned = asyncio.run(
        plan_queue(
            policy=policy.name,
            metrics_path=recent_demo_metrics(),
            approval="policy",
            approval_poll_s=1,
        )
    )
    assert planned["status"] == "proposed", planned
    assert "waiting in approval run" in planned["note"]
    asyncio.run(_runner_pass(runner))  # runs until the suspension ends the process

    store = plan_store()
    plan = store.get_plan(planned["id"])
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(plan.flow_run_id))
    assert run.name == f"approve-plan-{plan.id}"
    assert run.state.is_paused() and run.state.name == "Suspended", run.state
    assert plan.status == PlanStatus.PROPOSED

    decide(store, plan.id, "approve", "erin", comment="later")
    runner2 = Runner(name="test-suspend-2", query_seconds=1, pause_on_shutdown=False)
    runner2.add_flow(approve_plan, name="approve-plan")
    asyncio.run(_runner_pass(runner2))  # the resumed run restarts and finishes

    with get_client(sync_client=True) as client:
        final = client.read_flow_run(run.id).state
    assert final.is_completed(), final
    got = store.get_plan(plan.id)
    assert got.decided_by == "erin"
    assert got.status in (PlanStatus.APPROVED, PlanStatus.APPLIED)
    # the restarted run decided the same plan once; nothing applied before its time
    assert [p.id for p in store.list_plans(queue="emails")] == [plan.id]
    assert len(store.audit_events(plan_id=plan.id, action="approved")) == 1
    assert_applied_only_when_due(store, plan.id)
