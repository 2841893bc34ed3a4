"""The Kubernetes scalers through the official client against a real HTTP API double."""

from __future__ import annotations

from pathlib import Path

import pytest
from k8s_double import K8sApiDouble

from capplan_adapters.scalers import (
    KedaScaledObjectScaler,
    KubernetesDeploymentScaler,
    KubernetesScaler,
    build_scaler,
)
from capplan_adapters.scalers.k8s_keda import HybridRateTarget
from capplan_core.execution import ScalerError
from capplan_core.planning.window_sizing import capacity_at_slo, slo_terms_from_policy
from capplan_core.policy import ScalingPolicy, TargetSpec

pytestmark = pytest.mark.integration

EMAIL = TargetSpec(kind="deployment", namespace="workers", name="email-worker")
REPORT = TargetSpec(kind="deployment", namespace="batch", name="report-worker")
THUMB_SO = TargetSpec(kind="scaledobject", namespace="workers", name="thumbnail-so")
FAST = (1.0, 2.0)


def deployment_scaler(k8s: K8sApiDouble, **kw: object) -> KubernetesDeploymentScaler:
    return KubernetesDeploymentScaler(
        k8s.api_client(), request_timeout_s=FAST, poll_interval_s=0.01, **kw
    )  # type: ignore[arg-type]


def keda_scaler(k8s: K8sApiDouble) -> KedaScaledObjectScaler:
    return KedaScaledObjectScaler(k8s.api_client(), request_timeout_s=FAST, poll_interval_s=0.01)


def test_patch_scale_then_read_back(k8s: K8sApiDouble) -> None:
    scaler = deployment_scaler(k8s)
    assert scaler.get_replicas(EMAIL) == 2
    outcome = scaler.set_replicas(EMAIL, 7)
    assert (outcome.from_replicas, outcome.to_replicas, outcome.changed) == (2, 7, True)
    assert scaler.get_replicas(EMAIL) == 7
    assert k8s.replicas("workers", "email-worker") == 7
    (patch,) = k8s.writes()
    assert patch.path == "/apis/apps/v1/namespaces/workers/deployments/email-worker/scale"
    assert patch.content_type == "application/merge-patch+json"
    assert patch.body["spec"] == {"replicas": 7}
    assert patch.body["metadata"]["resourceVersion"]  # optimistic-concurrency precondition
    assert "fieldManager=capplan" in patch.query


def test_repeated_apply_sends_no_patch(k8s: K8sApiDouble) -> None:
    scaler = deployment_scaler(k8s)
    scaler.set_replicas(EMAIL, 5)
    again = scaler.set_replicas(EMAIL, 5)
    assert again.changed is False and again.from_replicas == again.to_replicas == 5
    assert len(k8s.writes()) == 1


def test_forbidden_namespace_raises_forbidden_and_changes_nothing(k8s: K8sApiDouble) -> None:
    k8s.forbidden_namespaces.add("batch")
    scaler = deployment_scaler(k8s)
    with pytest.raises(ScalerError) as info:
        scaler.set_replicas(REPORT, 4)
    err = info.value
    assert err.kind == "forbidden" and err.status == 403 and not err.transient
    assert "batch/report-worker" in str(err)
    assert k8s.replicas("batch", "report-worker") == 1
    assert k8s.writes() == []


def test_unauthorized_is_forbidden(k8s: K8sApiDouble) -> None:
    k8s.unauthorized = True
    with pytest.raises(ScalerError) as info:
        deployment_scaler(k8s).get_replicas(EMAIL)
    assert info.value.kind == "forbidden" and info.value.status == 401


def test_unreachable_api_raises_unreachable(k8s: K8sApiDouble) -> None:
    scaler = deployment_scaler(k8s)
    k8s.stop()
    with pytest.raises(ScalerError) as info:
        scaler.set_replicas(EMAIL, 9)
    assert info.value.kind == "unreachable" and info.value.transient
    assert "workers/email-worker" in str(info.value)
    k8s.start()  # same port again: nothing was changed while it was down
    assert scaler.get_replicas(EMAIL) == 2
    assert k8s.writes() == []


def test_slow_api_hits_the_client_timeout(k8s: K8sApiDouble) -> None:
    k8s.delay_s = 1.0
    scaler = KubernetesDeploymentScaler(k8s.api_client(), request_timeout_s=(0.5, 0.2))
    with pytest.raises(ScalerError) as info:
        scaler.get_replicas(EMAIL)
    assert info.value.kind == "unreachable"


def test_missing_deployment_is_not_found(k8s: K8sApiDouble) -> None:
    ghost = TargetSpec(namespace="workers", name="ghost-worker")
    with pytest.raises(ScalerError) as info:
        deployment_scaler(k8s).set_replicas(ghost, 3)
    assert info.value.kind == "not_found" and "workers/ghost-worker" in str(info.value)


def test_concurrent_writer_makes_the_patch_conflict(k8s: K8sApiDouble) -> None:
    def someone_else_scales(method: str, path: str) -> None:
        if method == "PATCH":
            k8s.before_handle = None
            k8s.scale_externally("workers", "email-worker", 4)

    k8s.before_handle = someone_else_scales
    with pytest.raises(ScalerError) as info:
        deployment_scaler(k8s).set_replicas(EMAIL, 10)
    assert info.value.kind == "conflict" and info.value.transient
    assert k8s.replicas("workers", "email-worker") == 4  # the other writer's value stands


def test_server_error_is_transient(k8s: K8sApiDouble) -> None:
    k8s.fail_next.append(("PATCH", 503))
    scaler = deployment_scaler(k8s)
    with pytest.raises(ScalerError) as info:
        scaler.set_replicas(EMAIL, 6)
    assert info.value.kind == "unreachable" and info.value.status == 503
    assert k8s.replicas("workers", "email-worker") == 2


def test_invalid_replicas_rejected_before_any_call(k8s: K8sApiDouble) -> None:
    with pytest.raises(ScalerError) as info:
        deployment_scaler(k8s).set_replicas(EMAIL, -1)
    assert info.value.kind == "invalid"
    assert k8s.requests == []


def test_deployment_scaler_refuses_a_scaledobject_target(k8s: K8sApiDouble) -> None:
    with pytest.raises(ScalerError) as info:
        deployment_scaler(k8s).set_replicas(THUMB_SO, 5)
    assert info.value.kind == "invalid" and "KEDA" in str(info.value)


def test_wait_ready_converges_after_polls() -> None:
    k8s = K8sApiDouble(ready_after_polls=3)
    k8s.add_deployment("workers", "email-worker", replicas=2)
    k8s.start()
    try:
        scaler = deployment_scaler(k8s)
        scaler.set_replicas(EMAIL, 6)
        ready = scaler.wait_ready(EMAIL, 6, timeout_s=10)
        assert ready.ready and ready.ready_replicas == 6 and ready.polls == 3
        status_reads = [r for r in k8s.requests if r.path.endswith("/status")]
        assert len(status_reads) == 3
    finally:
        k8s.stop()


def test_wait_ready_times_out_and_reports() -> None:
    k8s = K8sApiDouble(ready_after_polls=None)  # never converges
    k8s.add_deployment("workers", "email-worker", replicas=2)
    k8s.start()
    try:
        scaler = deployment_scaler(k8s)
        scaler.set_replicas(EMAIL, 6)
        ready = scaler.wait_ready(EMAIL, 6, timeout_s=0.2)
        assert not ready.ready and ready.ready_replicas == 2
        assert ready.polls >= 2 and 0.2 <= ready.waited_s < 5
        assert "timed out" in ready.message
    finally:
        k8s.stop()


def test_wait_ready_scale_down_waits_for_pods_to_go() -> None:
    k8s = K8sApiDouble(ready_after_polls=2)
    k8s.add_deployment("workers", "email-worker", replicas=8)
    k8s.start()
    try:
        scaler = deployment_scaler(k8s)
        scaler.set_replicas(EMAIL, 3)
        ready = scaler.wait_ready(EMAIL, 3, timeout_s=10)
        assert ready.ready and ready.polls == 2
    finally:
        k8s.stop()


def test_keda_floor_moves_and_keda_scales_above(k8s: K8sApiDouble) -> None:
    scaler = keda_scaler(k8s)
    assert scaler.get_replicas(THUMB_SO) == 3
    outcome = scaler.set_replicas(THUMB_SO, 12)
    assert outcome.changed and outcome.replica_field == "spec.minReplicaCount"
    assert k8s.scaledobjects[("workers", "thumbnail-so")]["spec"]["minReplicaCount"] == 12
    assert k8s.scaledobjects[("workers", "thumbnail-so")]["spec"]["maxReplicaCount"] == 40
    (patch,) = k8s.writes()
    assert patch.path == "/apis/keda.sh/v1alpha1/namespaces/workers/scaledobjects/thumbnail-so"
    assert patch.content_type == "application/merge-patch+json"
    assert patch.body["spec"] == {"minReplicaCount": 12}
    ready = scaler.wait_ready(THUMB_SO, 12, timeout_s=5)
    assert ready.ready and ready.name == "thumbnail-worker" and ready.ready_replicas == 12
    assert scaler.set_replicas(THUMB_SO, 12).changed is False
    assert len(k8s.writes()) == 1


def test_keda_floor_above_ceiling_is_invalid(k8s: K8sApiDouble) -> None:
    with pytest.raises(ScalerError) as info:
        keda_scaler(k8s).set_replicas(THUMB_SO, 41)
    assert info.value.kind == "invalid" and "maxReplicaCount 40" in str(info.value)
    assert k8s.writes() == []


def test_keda_forbidden_and_missing(k8s: K8sApiDouble) -> None:
    missing = TargetSpec(kind="scaledobject", namespace="workers", name="nope")
    with pytest.raises(ScalerError) as info:
        keda_scaler(k8s).get_replicas(missing)
    assert info.value.kind == "not_found"
    k8s.forbidden_namespaces.add("workers")
    with pytest.raises(ScalerError) as info:
        keda_scaler(k8s).set_replicas(THUMB_SO, 5)
    assert info.value.kind == "forbidden"
    assert k8s.scaledobjects[("workers", "thumbnail-so")]["spec"]["minReplicaCount"] == 3


def test_keda_wait_ready_needs_a_deployment_target(k8s: K8sApiDouble) -> None:
    k8s.add_scaledobject("workers", "sts-so", "some-sts", target_kind="StatefulSet")
    target = TargetSpec(kind="scaledobject", namespace="workers", name="sts-so")
    with pytest.raises(ScalerError) as info:
        keda_scaler(k8s).wait_ready(target, 2, timeout_s=1)
    assert info.value.kind == "invalid"


def test_build_scaler_routes_by_target_kind(k8s: K8sApiDouble) -> None:
    scaler = build_scaler(
        "kubernetes", api_client=k8s.api_client(), request_timeout_s=FAST, poll_interval_s=0.01
    )
    assert isinstance(scaler, KubernetesScaler)
    scaler.set_replicas(EMAIL, 4)
    scaler.set_replicas(THUMB_SO, 5)
    assert k8s.replicas("workers", "email-worker") == 4
    assert k8s.scaledobjects[("workers", "thumbnail-so")]["spec"]["minReplicaCount"] == 5
    assert scaler.wait_ready(EMAIL, 4, timeout_s=2).ready


def test_build_scaler_keda_mode_uses_the_same_name() -> None:
    k8s = K8sApiDouble()
    k8s.add_deployment("workers", "email-worker", replicas=2)
    k8s.add_scaledobject("workers", "email-worker", "email-worker", min_replicas=2)
    k8s.start()
    try:
        scaler = build_scaler("keda", api_client=k8s.api_client(), request_timeout_s=FAST)
        assert scaler.set_replicas(EMAIL, 6).replica_field == "spec.minReplicaCount"
        assert k8s.replicas("workers", "email-worker") == 6
    finally:
        k8s.stop()


def test_build_scaler_from_a_kubeconfig_file(k8s: K8sApiDouble, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: double\n"
        f"clusters: [{{name: double, cluster: {{server: '{k8s.url}'}}}}]\n"
        "users: [{name: capplan, user: {token: test-token}}]\n"
        "contexts: [{name: double, context: {cluster: double, user: capplan}}]\n"
    )
    scaler = build_scaler("deployment", str(kubeconfig), "double", request_timeout_s=FAST)
    assert scaler.get_replicas(EMAIL) == 2
    assert k8s.requests[-1].authorization == "Bearer test-token"


def test_bad_kubeconfig_is_a_config_error_on_first_use(tmp_path: Path) -> None:
    scaler = build_scaler("kubernetes", str(tmp_path / "missing"), "nope")  # does not load yet
    with pytest.raises(ScalerError) as info:
        scaler.get_replicas(EMAIL)
    assert info.value.kind == "config"


@pytest.mark.parametrize("target", [EMAIL, THUMB_SO])
def test_the_patch_carries_the_version_the_read_returned(
    k8s: K8sApiDouble, target: TargetSpec
) -> None:
    scaler = deployment_scaler(k8s) if target.kind == "deployment" else keda_scaler(k8s)
    live = scaler.read(target)
    assert live.version is not None
    writes = len(k8s.writes())
    outcome = scaler.set_replicas(target, live.replicas + 2, expected=live)
    assert outcome.changed and outcome.from_replicas == live.replicas
    sent = k8s.writes()[writes]
    assert sent.body["metadata"]["resourceVersion"] == live.version
    # a write by someone else since ``live`` was read: 409, nothing overwritten
    with pytest.raises(ScalerError) as err:
        scaler.set_replicas(target, live.replicas + 5, expected=live)
    assert err.value.kind == "conflict" and err.value.transient
    assert scaler.read(target).replicas == live.replicas + 2


def _hybrid_policy(strategy: str) -> ScalingPolicy:
    return ScalingPolicy.model_validate(
        {
            "name": "thumbs",
            "queue": "thumbnails",
            "target": {"kind": "scaledobject", "namespace": "workers", "name": "thumbnail-so"},
            "slo": {"wait_p95_seconds": 30},
            "scaling": {"max_workers": 40, "strategy": strategy},
        }
    )


def _with_rate_trigger(k8s: K8sApiDouble) -> None:
    with k8s._lock:
        k8s.scaledobjects[("workers", "thumbnail-so")]["spec"]["triggers"].append(
            {
                "type": "prometheus",
                "name": "capplan-rate",
                "metadata": {"query": "sum(rate(jobs_enqueued_total[1m]))", "threshold": "1"},
            }
        )


def test_keda_hybrid_moves_the_floor_and_the_rate_target_in_one_patch(k8s: K8sApiDouble) -> None:
    _with_rate_trigger(k8s)
    targets = HybridRateTarget()
    targets.observe(_hybrid_policy("hybrid"), mean_service_s=2.0)
    scaler = KedaScaledObjectScaler(
        k8s.api_client(), request_timeout_s=FAST, poll_interval_s=0.01, trigger_target=targets
    )
    outcome = scaler.set_replicas(THUMB_SO, 12)
    assert outcome.changed and outcome.to_replicas == 12
    (patch,) = k8s.writes()
    assert patch.body["spec"]["minReplicaCount"] == 12
    redis, rate = patch.body["spec"]["triggers"]
    assert redis == {
        "type": "redis",
        "metadata": {"listName": "thumbnail-so", "listLength": "10"},
    }  # untouched
    # 12 workers of 2-s jobs carry 5.90 jobs/s within p95 wait <= 30 s: 0.492 per replica
    per_replica = float(rate["metadata"]["threshold"])
    expected = capacity_at_slo(12, 2.0, slo_terms_from_policy(_hybrid_policy("hybrid"), 0)) / 12
    assert per_replica == pytest.approx(expected, rel=1e-5)
    assert 0.49 < per_replica < 0.5  # below a worker's 0.5 jobs/s: the SLO's headroom
    assert rate["metadata"]["query"] == "sum(rate(jobs_enqueued_total[1m]))"
    stored = k8s.scaledobjects[("workers", "thumbnail-so")]["spec"]
    assert stored["minReplicaCount"] == 12
    assert stored["triggers"][1]["metadata"]["threshold"] == rate["metadata"]["threshold"]
    # the same floor again: nothing to write; a new floor moves both again
    assert scaler.set_replicas(THUMB_SO, 12).changed is False
    scaler.set_replicas(THUMB_SO, 20)
    last = k8s.writes()[-1].body["spec"]
    assert last["minReplicaCount"] == 20
    assert float(last["triggers"][1]["metadata"]["threshold"]) > per_replica  # pooling gains
    assert len(k8s.writes()) == 2


def test_keda_predictive_policy_moves_the_floor_only(k8s: K8sApiDouble) -> None:
    _with_rate_trigger(k8s)
    targets = HybridRateTarget()
    targets.observe(_hybrid_policy("predictive"), mean_service_s=2.0)
    scaler = KedaScaledObjectScaler(
        k8s.api_client(), request_timeout_s=FAST, poll_interval_s=0.01, trigger_target=targets
    )
    scaler.set_replicas(THUMB_SO, 9)
    (patch,) = k8s.writes()
    assert patch.body["spec"] == {"minReplicaCount": 9}


def test_keda_hybrid_without_a_named_rate_trigger_is_invalid(k8s: K8sApiDouble) -> None:
    targets = HybridRateTarget()
    targets.observe(_hybrid_policy("hybrid"), mean_service_s=2.0)
    scaler = KedaScaledObjectScaler(
        k8s.api_client(), request_timeout_s=FAST, poll_interval_s=0.01, trigger_target=targets
    )
    with pytest.raises(ScalerError) as info:
        scaler.set_replicas(THUMB_SO, 9)
    assert info.value.kind == "invalid" and "capplan-rate" in str(info.value)
    assert k8s.writes() == []


def test_a_step_of_a_hybrid_plan_carries_the_rate_target_through_the_factory(
    k8s: K8sApiDouble,
) -> None:
    """What apply-step builds: the plan's stored pool state and policy version give the
    trigger target; the scaler from the factory patches the floor and the target together."""
    from capplan_adapters.scalers.factory import build_scaler
    from capplan_adapters.scalers.k8s_keda import plan_trigger_target

    _with_rate_trigger(k8s)
    details = {"state": {"mean_service_s": 2.0, "service_scv": 1.0, "current_workers": 4}}
    assert plan_trigger_target(_hybrid_policy("predictive"), details) is None
    # a predictive policy ignores a plan's recorded strategy (only auto reads it)
    assert (
        plan_trigger_target(_hybrid_policy("predictive"), details | {"strategy": "hybrid"}) is None
    )
    no_service = {"state": {"mean_service_s": None}}
    assert plan_trigger_target(_hybrid_policy("hybrid"), no_service) is None
    scaler = build_scaler(
        "keda",
        api_client=k8s.api_client(),
        request_timeout_s=FAST,
        poll_interval_s=0.01,
        trigger_target=plan_trigger_target(_hybrid_policy("hybrid"), details),
    )
    scaler.set_replicas(THUMB_SO, 12)
    (patch,) = k8s.writes()
    expected = capacity_at_slo(12, 2.0, slo_terms_from_policy(_hybrid_policy("hybrid"), 0)) / 12
    assert patch.body["spec"]["minReplicaCount"] == 12
    assert float(patch.body["spec"]["triggers"][1]["metadata"]["threshold"]) == pytest.approx(
        expected, rel=1e-5
    )


@pytest.mark.parametrize(("recorded", "moves_target"), [("hybrid", True), ("predictive", False)])
def test_an_auto_plan_carries_out_the_strategy_it_recorded(
    k8s: K8sApiDouble, recorded: str, moves_target: bool
) -> None:
    """``scaling.strategy: auto``: the step does what the plan recorded (the choice of the
    queue's last week), not the policy's word; no recorded strategy is predictive."""
    from capplan_adapters.scalers.factory import build_scaler
    from capplan_adapters.scalers.k8s_keda import plan_trigger_target

    _with_rate_trigger(k8s)
    state = {"mean_service_s": 2.0, "service_scv": 1.0}
    assert plan_trigger_target(_hybrid_policy("auto"), {"state": state}) is None
    scaler = build_scaler(
        "keda",
        api_client=k8s.api_client(),
        request_timeout_s=FAST,
        poll_interval_s=0.01,
        trigger_target=plan_trigger_target(
            _hybrid_policy("auto"), {"state": state, "strategy": recorded}
        ),
    )
    scaler.set_replicas(THUMB_SO, 12)
    (patch,) = k8s.writes()
    assert patch.body["spec"]["minReplicaCount"] == 12
    assert ("triggers" in patch.body["spec"]) is moves_target


def test_an_auto_hybrid_plan_on_a_scaledobject_without_the_rate_trigger_moves_the_floor_only(
    k8s: K8sApiDouble, caplog: pytest.LogCaptureFixture
) -> None:
    """The policy never asked for a ``capplan-rate`` trigger (``auto`` chose hybrid): the step
    moves the floor and warns, where a policy that states hybrid fails (test above)."""
    from capplan_adapters.scalers.k8s_keda import plan_trigger_target

    details = {"state": {"mean_service_s": 2.0}, "strategy": "hybrid"}
    scaler = KedaScaledObjectScaler(
        k8s.api_client(),
        request_timeout_s=FAST,
        poll_interval_s=0.01,
        trigger_target=plan_trigger_target(_hybrid_policy("auto"), details),
    )
    with caplog.at_level("WARNING"):
        assert scaler.set_replicas(THUMB_SO, 9).to_replicas == 9
    (patch,) = k8s.writes()
    assert patch.body["spec"] == {"minReplicaCount": 9}
    assert "no trigger named capplan-rate" in caplog.text
    stated = KedaScaledObjectScaler(
        k8s.api_client(),
        request_timeout_s=FAST,
        poll_interval_s=0.01,
        trigger_target=plan_trigger_target(_hybrid_policy("hybrid"), details),
    )
    with pytest.raises(ScalerError) as info:
        stated.set_replicas(THUMB_SO, 10)
    assert info.value.kind == "invalid"
