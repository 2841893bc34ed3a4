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
import sys
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


AUTOMATIONS = Path(__file__).resolve().parents[3] / (
    "deployments/prefect/automation-crash-zombie-runs.yaml"
)


def test_a_run_stuck_submitted_across_a_server_restart_is_crashed_and_frees_its_slot(
    prefect_home: PrefectServer, tmp_path: Path
) -> None:
    """What the soak found (issue 21): a run the worker had marked Submitting when its process
    or the server died keeps its deployment's concurrency slot for good (the slot's lease lived
    in the server's memory), and with CANCEL_NEW every later collect-metrics and apply-due run
    was cancelled. deployments/prefect/automation-crash-zombie-runs.yaml's stuck-run automation
    (its 300 s shortened here) crashes such a run, which releases the slot, even when the
    server was SIGKILLed and restarted in between; a new run then takes the slot."""
    import subprocess
    import time
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import ConcurrencyLimitStrategy, ConcurrencyOptions
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Pending

    doc = yaml.safe_load(AUTOMATIONS.read_text())
    stuck = next(a for a in doc["automations"] if "stuck-pending" in a["name"])
    stuck["trigger"]["within"] = 20
    spec = tmp_path / "automations.yaml"
    spec.write_text(yaml.safe_dump({"automations": [stuck]}))
    env = {**os.environ, "PREFECT_API_URL": prefect_home.api_url}
    prefect = Path(sys.executable).with_name("prefect")
    subprocess.run(
        [str(prefect), "automation", "create", "--from-file", str(spec)],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )

    def slots(client: Any, deployment_id: UUID) -> int:
        limit = client.read_deployment(deployment_id).global_concurrency_limit
        return int(limit.active_slots) if limit else -1

    with (
        temporary_settings(updates={PREFECT_API_URL: prefect_home.api_url}),
        get_client(sync_client=True) as client,
    ):
        flow_id = client.create_flow_from_name("stuck-probe")
        dep = client.create_deployment(
            flow_id,
            "stuck-probe",
            concurrency_limit=1,
            concurrency_options=ConcurrencyOptions(
                collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
            ),
        )
        first = client.create_flow_run_from_deployment(dep)
        taken = client.set_flow_run_state(first.id, Pending(name="Submitting"))
        assert taken.state is not None and taken.state.name == "Submitting"
        assert slots(client, dep) == 1
    time.sleep(3)
    prefect_home.stop()  # SIGKILL: the slot's lease is lost with the server's memory
    prefect_home.start()
    with (
        temporary_settings(updates={PREFECT_API_URL: prefect_home.api_url}),
        get_client(sync_client=True) as client,
    ):
        t0 = time.monotonic()
        while time.monotonic() - t0 < 180:
            state = client.read_flow_run(first.id).state
            if state is not None and state.is_crashed():
                break
            time.sleep(2)
        assert state is not None and state.is_crashed(), state
        assert "stuck-run automation" in (state.message or "")
        assert slots(client, dep) == 0
        second = client.create_flow_run_from_deployment(dep)
        took = client.set_flow_run_state(second.id, Pending(name="Submitting"))
        assert took.state is not None and took.state.name == "Submitting", took
    print(f"\nstuck Submitting run crashed {time.monotonic() - t0:.0f} s after the restart")


def test_settle_prefect_crashes_only_the_runs_in_flight_at_the_restore_point(
    prefect_home: PrefectServer,
) -> None:
    """After a restore, capplan db settle-prefect (capplan_app/prefect_restore.py) marks
    Crashed the runs the restored database still shows in flight from before the restore
    point, which frees their slots; a run that entered its state after that point is alive
    and left alone, and so is a paused one."""
    import time
    from datetime import UTC, datetime

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Paused, Pending, Running

    from capplan_app.prefect_restore import crash_runs_in_flight

    with (
        temporary_settings(updates={PREFECT_API_URL: prefect_home.api_url}),
        get_client(sync_client=True) as client,
    ):
        flow_id = client.create_flow_from_name("settle-probe")
        dep = client.create_deployment(flow_id, "settle-probe", concurrency_limit=1)
        stuck = client.create_flow_run_from_deployment(dep)
        client.set_flow_run_state(stuck.id, Pending(name="Submitting"))
        free = client.create_deployment(flow_id, "settle-probe-free")
        paused = client.create_flow_run_from_deployment(free)
        client.set_flow_run_state(paused.id, Running())
        client.set_flow_run_state(paused.id, Paused(timeout_seconds=3600, pause_key="k"))
        time.sleep(1.5)
        restored_to = datetime.now(UTC)
        time.sleep(1.5)
        alive = client.create_flow_run_from_deployment(free)
        client.set_flow_run_state(alive.id, Running())
        crashed = crash_runs_in_flight(restored_to)
        assert [c["id"] for c in crashed] == [str(stuck.id)]
        assert crashed[0]["was"] == "PENDING"
        state = client.read_flow_run(stuck.id).state
        assert (
            state is not None
            and state.is_crashed()
            and "restored from backup" in (state.message or "")
        )
        assert client.read_flow_run(alive.id).state.is_running()
        assert client.read_flow_run(paused.id).state.is_paused()
        limit = client.read_deployment(dep).global_concurrency_limit
        assert limit is not None and limit.active_slots == 0
