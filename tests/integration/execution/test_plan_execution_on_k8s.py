"""Approved plans applied through the real kubernetes client (credentials from a kubeconfig)
to the HTTP Kubernetes API double: the first step at approval, later steps by apply-step runs,
nothing on reject/expire, drift refused and audited, 403/unreachable change nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml
from k8s_double import K8sApiDouble

from capplan_app.bootstrap import plan_store
from capplan_app.settings import get_settings
from capplan_core.planning.stored_plan import PlanDraft, PlanStatus, StepDraft, StepStatus
from capplan_core.policy import parse_policies
from tests.approvers import approve, env_approval

pytestmark = [pytest.mark.integration]
T0 = datetime.now(UTC) - timedelta(minutes=5)


@pytest.fixture
def cluster(k8s: K8sApiDouble, capplan_env, tmp_path, monkeypatch) -> K8sApiDouble:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "double",
                "clusters": [{"name": "double", "cluster": {"server": k8s.url}}],
                "users": [{"name": "capplan", "user": {"token": "test-token"}}],
                "contexts": [
                    {"name": "double", "context": {"cluster": "double", "user": "capplan"}}
                ],
            }
        )
    )
    monkeypatch.setenv("CAPPLAN_SCALER", "kubernetes")
    monkeypatch.setenv("CAPPLAN_KUBECONFIG", str(kubeconfig))
    get_settings.cache_clear()
    k8s.scale_externally("workers", "email-worker", 10)
    return k8s


def _approved_plan(decision: str | None = "approve", cooldown_s: float = 0) -> int:
    store = plan_store()
    policy = parse_policies(
        {
            "policies": [
                {
                    "name": "emails",
                    "queue": "emails",
                    "mode": "manual",
                    "target": {"namespace": "workers", "name": "email-worker"},
                    "slo": {"wait_p95_seconds": 30},
                    "scaling": {"max_workers": 50, "max_step": 10, "cooldown_seconds": cooldown_s},
                    "approval": env_approval(["alice", "bob"]),
                }
            ]
        }
    )[0]
    store.apply_policies([policy], actor="test")
    pid = store.create_plan(
        PlanDraft(
            policy_name="emails",
            queue="emails",
            mode="manual",
            current_workers=10,
            target_workers=18,
            confidence=0.95,
            slo_achievable=True,
            as_of=T0,
            steps=[
                StepDraft(T0, 10, 14, "ramp"),
                StepDraft(T0 + timedelta(minutes=1), 14, 18, "peak"),
                StepDraft(T0 + timedelta(minutes=2), 18, 12, "after peak"),
            ],
            details={"policy": "emails"},
        )
    )
    if decision == "approve":
        approve(store, pid, "alice")  # with alice's code: the write checks it
    elif decision == "reject":
        store.transition(pid, PlanStatus.REJECTED, actor="bob")
    elif decision == "expire":
        store.transition(pid, PlanStatus.EXPIRED, actor="capplan")
    return pid


def test_approve_patches_first_step_then_apply_step_runs_apply_the_rest(prefect_server, cluster):
    from flows.apply_step import apply_step_flow
    from tasks.execute import execute_plan

    pid = _approved_plan()
    report = execute_plan("emails", pid)
    assert cluster.replicas("workers", "email-worker") == 14
    assert [s["step_id"] for s in report["scheduled"]] != []
    store = plan_store()
    steps = store.get_plan(pid).steps
    for st in steps[1:]:
        out = apply_step_flow(plan_id=pid, step_id=st.id)
        assert out["outcome"] == "applied", out
        assert cluster.replicas("workers", "email-worker") == st.to_workers
    plan = store.get_plan(pid)
    assert plan.status == PlanStatus.APPLIED
    assert [s.status for s in plan.steps] == [StepStatus.APPLIED] * 3
    # a repeated apply is a no-op: no new write reaches the cluster
    writes = len(cluster.writes())
    again = apply_step_flow(plan_id=pid, step_id=steps[1].id)
    assert again["outcome"] == "already-applied"
    assert len(cluster.writes()) == writes
    patched = [
        a.details["outcome"]["to_replicas"] for a in store.audit_events(plan_id=pid, action="scale")
    ]
    assert patched == [14, 18, 12]


@pytest.mark.parametrize("decision", ["reject", "expire"])
def test_rejected_or_expired_plan_patches_nothing(prefect_server, cluster, decision):
    from flows.apply_step import apply_step_flow

    pid = _approved_plan(decision)
    for st in plan_store().get_plan(pid).steps:
        out = apply_step_flow(plan_id=pid, step_id=st.id)
        assert out["outcome"] in ("already-cancelled", "cancelled")
    assert cluster.writes() == []
    assert cluster.replicas("workers", "email-worker") == 10


def test_drift_is_refused_audited_and_asks_for_a_replan(prefect_server, cluster):
    from flows.apply_step import apply_step_flow
    from tasks.execute import execute_plan

    pid = _approved_plan()
    execute_plan("emails", pid)
    cluster.scale_externally("workers", "email-worker", 25)  # someone else scaled it
    writes = len(cluster.writes())
    step2 = plan_store().get_plan(pid).steps[1]
    out = apply_step_flow(plan_id=pid, step_id=step2.id)
    assert out["outcome"] == "refused" and "replan_run" in out
    assert len(cluster.writes()) == writes
    assert cluster.replicas("workers", "email-worker") == 25
    drift = plan_store().audit_events(plan_id=pid, action="drift")
    assert len(drift) == 1 and drift[0].details["live_before"] == 25


def test_cooldown_defers_a_step_instead_of_refusing_it(prefect_server, cluster):
    from flows.apply_step import apply_step_flow
    from tasks.execute import execute_plan

    pid = _approved_plan(cooldown_s=600)
    execute_plan("emails", pid)
    step2 = plan_store().get_plan(pid).steps[1]
    out = apply_step_flow(plan_id=pid, step_id=step2.id)
    assert out["outcome"] == "deferred"
    assert plan_store().get_plan(pid).steps[1].status == StepStatus.PENDING


@pytest.mark.parametrize("fault", ["forbidden", "unreachable"])
def test_forbidden_fails_the_plan_and_unreachable_defers_both_change_nothing(
    prefect_server, cluster, fault, monkeypatch
):
    import tasks.execute
    from flows.apply_step import apply_step_flow
    from tasks.execute import execute_plan

    emitted: list[tuple[str, int]] = []
    real_emit = tasks.execute.emit_plan_event

    def record(what, summary, *, actor):
        emitted.append((what, summary["id"]))
        real_emit(what, summary, actor=actor)

    monkeypatch.setattr(tasks.execute, "emit_plan_event", record)

    pid = _approved_plan()
    execute_plan("emails", pid)
    step2 = plan_store().get_plan(pid).steps[1]
    if fault == "forbidden":
        cluster.forbidden_namespaces.add("workers")
        with pytest.raises(Exception, match="forbidden"):
            apply_step_flow(plan_id=pid, step_id=step2.id)
    else:
        cluster.stop()
        out = apply_step_flow(plan_id=pid, step_id=step2.id)
        assert out["outcome"] == "deferred" and "unreachable" in out["reason"]
    store = plan_store()
    plan = store.get_plan(pid)
    failed = store.audit_events(plan_id=pid, action="scale_failed")
    assert failed and failed[-1].details["kind"] == fault
    assert emitted == ([("failed", pid)] if fault == "forbidden" else [])
    if fault == "forbidden":  # permanent: the step and its plan fail, the rest is cancelled
        assert plan.status == PlanStatus.FAILED
        assert [s.status for s in plan.steps] == [
            StepStatus.APPLIED,
            StepStatus.FAILED,
            StepStatus.CANCELLED,
        ]
        assert cluster.replicas("workers", "email-worker") == 14
    else:  # transient: released for a later run
        assert plan.status == PlanStatus.APPROVED
        assert plan.steps[1].status == StepStatus.PENDING


def test_later_steps_become_scheduled_apply_step_runs_at_their_times(prefect_server, cluster):
    from prefect.client.orchestration import get_client

    from flows.apply_step import apply_step_flow
    from tasks.execute import execute_plan

    apply_step_flow.to_deployment(name="apply-step").apply()
    store = plan_store()
    pid = _approved_plan()
    future = datetime.now(UTC) + timedelta(hours=1)
    with store._session.begin() as s:  # move the later steps into the future
        from capplan_adapters.store.models import ScalingStepRow

        for i, st in enumerate(
            s.query(ScalingStepRow).filter_by(plan_id=pid).order_by(ScalingStepRow.seq)
        ):
            if i:
                st.execute_at = future + timedelta(minutes=i)
    report = execute_plan("emails", pid)
    assert cluster.replicas("workers", "email-worker") == 14
    assert len(report["scheduled"]) == 2 and all(s["flow_run_id"] for s in report["scheduled"])
    steps = store.get_plan(pid).steps
    with get_client(sync_client=True) as client:
        for sched, st in zip(report["scheduled"], steps[1:], strict=True):
            run = client.read_flow_run(sched["flow_run_id"])
            assert run.state.is_scheduled()
            assert run.parameters == {"plan_id": pid, "step_id": st.id}
            assert abs((run.expected_start_time - st.execute_at).total_seconds()) < 1
