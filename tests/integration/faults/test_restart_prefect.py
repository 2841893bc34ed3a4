"""The Prefect server restarted while a run waits for approval (issue 12, point 10).

A real ``prefect server start`` subprocess (own PREFECT_HOME, SQLite) serves the deployed
``approve-plan`` run of a manual plan with ``approval.suspend`` (the planning run that made the
plan has long finished). The run suspends (its process exits), the server is killed (SIGKILL)
and started again on the same database, and the approval is sent through the API
(``resume_flow_run`` with the form's input). The resumed run must finish, and over the whole
history: one approval, one ``execute`` task run, each step's outcome recorded at most once, no
step applied before its time. Repeated ``REPS`` times.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from capplan_app.bootstrap import DEMO_POLICIES, plan_store
from capplan_core.planning.stored_plan import PlanStatus
from capplan_core.policy import ScalingPolicy, parse_policies
from tests.integration.faults.restart_services import PrefectServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# CI runs fewer repetitions than the documented runs (docs/reliability.md): set
# CAPPLAN_FAULT_REPS to repeat more.
REPS = int(os.environ.get("CAPPLAN_FAULT_REPS", "2"))


def _policy() -> ScalingPolicy:
    doc = yaml.safe_load(DEMO_POLICIES.read_text())
    emails = next(p for p in doc["policies"] if p["name"] == "emails")
    emails["approval"] = {"suspend": True, "timeout_seconds": 3600}
    return parse_policies({"policies": [emails]})[0]


@pytest.fixture
def prefect_home(tmp_path: Path) -> Iterator[PrefectServer]:
    home = tmp_path / "prefect-home"
    home.mkdir()
    server = PrefectServer(home)
    server.start()
    yield server
    server.stop()


def _runner(name: str) -> Any:
    """A runner serving approve-plan (adding the flow creates its deployment)."""
    from prefect.runner import Runner

    from flows.approve_plan import approve_plan

    runner = Runner(name=name, query_seconds=1, pause_on_shutdown=False)
    runner.add_flow(approve_plan, name="approve-plan")
    return runner


def _runner_pass(runner: Any) -> None:
    asyncio.run(asyncio.wait_for(runner.start(run_once=True), timeout=600))


def _task_runs(run_id: Any) -> Counter[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
        )
    return Counter(r.name.split("-")[0] for r in runs)


def test_server_restart_while_suspended_then_approval_resumes_and_executes_once(
    prefect_home: PrefectServer, capplan_env: str
) -> None:
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.plan_queue import plan_queue
    from tests.approvers import decide, save_approver_keys, with_approvers
    from tests.integration.flows.helpers import recent_demo_metrics
    from tests.invariants import assert_applied_only_when_due

    policy = with_approvers([_policy()])[0]
    plan_store().apply_policies([policy], actor="test")
    server_start_s = []
    with temporary_settings(updates={PREFECT_API_URL: prefect_home.api_url}):
        os.environ["PREFECT_API_URL"] = prefect_home.api_url  # the runner's flow processes
        save_approver_keys(["erin"])
        try:
            for rep in range(REPS):
                runner = _runner(f"suspend-{rep}")  # creates the approve-plan deployment
                planned = asyncio.run(
                    plan_queue(
                        policy=policy.name,
                        metrics_path=recent_demo_metrics(),
                        approval="policy",
                        approval_poll_s=1,
                    )
                )
                assert planned["status"] == "proposed", planned
                _runner_pass(runner)  # its approve-plan run, until the suspension ends it
                store = plan_store()
                plan = store.get_plan(planned["id"])
                run_id = UUID(plan.flow_run_id)
                with get_client(sync_client=True) as client:
                    state = client.read_flow_run(run_id).state
                assert state is not None and state.name == "Suspended", state
                assert plan.status == PlanStatus.PROPOSED

                prefect_home.stop()  # SIGKILL the whole server
                server_start_s.append(prefect_home.start())  # same port, same database

                decide(store, plan.id, "approve", "erin")
                _runner_pass(_runner(f"resume-{rep}"))  # the resumed run restarts, finishes
                with get_client(sync_client=True) as client:
                    final = client.read_flow_run(run_id).state
                assert final is not None and final.is_completed(), final
                got = store.get_plan(plan.id)
                assert got.decided_by == "erin"
                assert got.status in (PlanStatus.APPROVED, PlanStatus.APPLIED)
                assert len(store.audit_events(plan_id=plan.id, action="approved")) == 1
                assert _task_runs(run_id)["execute"] == 1
                step_outcomes = Counter(
                    e.details.get("step_id")
                    for e in store.audit_events(plan_id=plan.id)
                    if e.action.startswith("step_")
                    and e.action not in ("step_claimed", "step_applying", "step_scheduled")
                )
                assert all(n == 1 for n in step_outcomes.values()), step_outcomes
                assert_applied_only_when_due(store, plan.id)
        finally:
            os.environ.pop("PREFECT_API_URL", None)
    print(
        f"\nPrefect server restarted while suspended: {REPS} reps, restart "
        f"{min(server_start_s):.0f}-{max(server_start_s):.0f} s, each run resumed, "
        "1 approval, 1 execute task run, each step outcome once"
    )


PAUSED_REPS = int(os.environ.get("CAPPLAN_FAULT_REPS", "2"))
# the planning run ends at once; the plan waits paused in its approve-plan run (a thread)
_PAUSED_RUN = """
import asyncio, sys
from flows.plan_queue import plan_queue
from tasks.approval_runs import join_local_approval_runs
asyncio.run(plan_queue(policy=sys.argv[1], metrics_path=sys.argv[2], approval="policy",
                       approval_poll_s=1))
sys.exit(1 if join_local_approval_runs(600) else 0)
"""


def test_server_restart_while_paused_then_approval_resumes_and_executes_once(
    prefect_home: PrefectServer, capplan_env: str, tmp_path: Path
) -> None:
    """The run waits paused in its own process, polling the server, while the server is
    SIGKILLed and restarted; the approval sent afterwards resumes it and it executes once."""
    import subprocess
    import sys
    from datetime import UTC, datetime
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from capplan_cli.approvals import wait_for_paused_plan
    from tests.approvers import decide
    from tests.integration.flows.helpers import recent_demo_metrics

    doc = yaml.safe_load(DEMO_POLICIES.read_text())
    emails = next(p for p in doc["policies"] if p["name"] == "emails")
    emails["approval"] = {"suspend": False, "timeout_seconds": 3600}
    from tests.approvers import save_approver_keys, with_approvers

    policy = with_approvers(parse_policies({"policies": [emails]}))[0]
    plan_store().apply_policies([policy], actor="test")
    env = {**os.environ, "PREFECT_API_URL": prefect_home.api_url}
    outcomes = []
    with temporary_settings(updates={PREFECT_API_URL: prefect_home.api_url}):
        save_approver_keys(["frank"])
        for rep in range(PAUSED_REPS):
            since = datetime.now(UTC)
            log = (tmp_path / f"paused-{rep}.log").open("w")
            proc = subprocess.Popen(
                [sys.executable, "-c", _PAUSED_RUN, policy.name, recent_demo_metrics()],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            store = plan_store()
            plan = wait_for_paused_plan(store, policy.queue, since=since, timeout_s=600)
            assert plan is not None and plan.flow_run_id
            prefect_home.stop()  # the paused process keeps polling a dead server
            prefect_home.start()
            decide(store, plan.id, "approve", "frank")
            rc = proc.wait(timeout=600)
            log.close()
            with get_client(sync_client=True) as client:
                final = client.read_flow_run(UUID(plan.flow_run_id)).state
            outcomes.append((rc, final.name if final else None))
            assert rc == 0 and final is not None and final.is_completed(), (
                rc,
                final,
                (tmp_path / f"paused-{rep}.log").read_text()[-3000:],
            )
            assert len(store.audit_events(plan_id=plan.id, action="approved")) == 1
            assert _task_runs(UUID(plan.flow_run_id))["execute"] == 1
    print(f"\nPrefect server restarted while paused: {PAUSED_REPS} reps, outcomes {outcomes}")
