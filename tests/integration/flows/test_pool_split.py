"""Two work pools (issue 24, docs/security.md "Two work pools"), against a real Prefect server:
the planning pool (``CAPPLAN_POOL_ROLE=planning``) never writes to a target. Its execute stage
hands every step, a due one too, to an apply-step run (a due one at once); an apply-step or
apply-due run that lands in the planning pool refuses before it claims anything; its scaler
only reads. The scaling pool's apply-step run then applies the step, once, in its window."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest

from capplan_app.bootstrap import plan_store
from capplan_core.planning.stored_plan import PlanStatus, StepStatus
from tests.integration.flows.test_time_correctness import _approved_plan, _policies
from tests.invariants import assert_applied_only_when_due

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _role(monkeypatch: pytest.MonkeyPatch, role: str) -> None:
    from capplan_app.settings import get_settings

    monkeypatch.setenv("CAPPLAN_POOL_ROLE", role)
    get_settings.cache_clear()


def test_the_planning_pool_hands_a_due_step_to_the_scaling_pool_and_writes_nothing(
    prefect_server, capplan_env, tmp_path, monkeypatch
):
    from prefect import flow
    from prefect.client.orchestration import get_client

    from flows.apply_step import apply_step_flow
    from tasks.execute import execute_plan

    apply_step_flow.to_deployment(name="apply-step").apply()
    names = _policies(tmp_path, thumbnails={})
    store = plan_store()
    pid = _approved_plan(names[0], "thumbnails", store.now(), (5, 6))  # due now

    _role(monkeypatch, "planning")

    @flow
    def planning_pool_execute() -> dict:
        return execute_plan(names[0], pid)

    before = store.now()
    out = planning_pool_execute()
    assert out["applied"] == [], out  # nothing written by the planning pool
    assert store.audit_events(plan_id=pid, action="scale") == []
    assert store.get_plan(pid).steps[0].status == StepStatus.PENDING
    [handed] = out["scheduled"]
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(handed["flow_run_id"]))
    assert run.parameters == {"plan_id": pid, "step_id": handed["step_id"]}
    # due now, so the apply-step run is due at once, not at a later window
    assert run.next_scheduled_start_time is not None
    assert run.next_scheduled_start_time - before < timedelta(seconds=10)

    # an apply-step or apply-due run that lands in the planning pool refuses, claiming nothing
    with pytest.raises(RuntimeError, match="CAPPLAN_POOL_ROLE=planning"):
        apply_step_flow(plan_id=pid, step_id=handed["step_id"])
    from flows.apply_due import apply_due_flow

    with pytest.raises(RuntimeError, match="planning work pool"):
        apply_due_flow()
    from typer.testing import CliRunner

    from capplan_cli.main import app

    res = CliRunner().invoke(app, ["plans", "apply-due"])  # the CLI, from a planning process
    assert res.exit_code == 2 and "CAPPLAN_POOL_ROLE=planning" in res.output, res.output
    assert store.get_plan(pid).steps[0].status == StepStatus.PENDING
    assert store.audit_events(plan_id=pid, action="scale") == []

    # the scaling pool's run applies it, once, in its window
    _role(monkeypatch, "scaling")
    done = apply_step_flow(plan_id=pid, step_id=handed["step_id"])
    assert done["outcome"] == "applied", done
    assert store.get_plan(pid).status == PlanStatus.APPLIED
    assert len(store.audit_events(plan_id=pid, action="scale")) == 1
    assert_applied_only_when_due(store, pid)


def test_a_planning_pool_scaler_reads_and_refuses_to_write(capplan_env, monkeypatch):
    from capplan_app import bootstrap
    from capplan_core.execution.scaler import ReadOnlyScaler, ScalerError
    from capplan_core.policy import TargetSpec

    _role(monkeypatch, "planning")
    s = bootstrap.scaler(dry_run_replicas=4)
    assert isinstance(s, ReadOnlyScaler)
    target = TargetSpec(kind="deployment", namespace="workers", name="w")
    assert s.read(target).replicas == 4
    with pytest.raises(ScalerError) as err:
        s.set_replicas(target, 7)
    assert err.value.kind == "forbidden" and not err.value.transient
    assert "planning work pool" in str(err.value)
    _role(monkeypatch, "scaling")
    assert not isinstance(bootstrap.scaler(dry_run_replicas=4), ReadOnlyScaler)
