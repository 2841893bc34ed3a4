"""Move the floor of a KEDA ``ScaledObject`` (``keda.sh/v1alpha1``).

capplan sets ``spec.minReplicaCount`` to the planned worker count — the predictive floor —
and KEDA keeps reacting to the queue above it, up to ``spec.maxReplicaCount``. Readiness is
read from the Deployment the ScaledObject targets (``spec.scaleTargetRef.name``).

RBAC needed (see ``deployments/rbac.yaml``): get/patch ``scaledobjects.keda.sh``, get
``deployments/status``.
"""

from __future__ import annotations

from typing import Any

from capplan_core.execution.k8s_common import (
    MERGE_PATCH,
    KubernetesScalerBase,
    k8s_errors,
)
from capplan_core.execution.k8s_deployment import wait_deployment_ready
from capplan_core.execution.scaler import (
    LiveReplicas,
    ReadyOutcome,
    ScaleOutcome,
    ScalerError,
    check_replicas,
    target_key,
)
from capplan_core.policy import TargetSpec

KEDA_GROUP = "keda.sh"
KEDA_VERSION = "v1alpha1"
KEDA_PLURAL = "scaledobjects"
#: KEDA's documented defaults when the fields are absent.
KEDA_DEFAULT_MIN_REPLICAS = 0
KEDA_DEFAULT_MAX_REPLICAS = 100


class KedaScaledObjectScaler(KubernetesScalerBase):
    """``Scaler`` that treats the target's ``namespace/name`` as a KEDA ScaledObject.

    Works for ``kind: scaledobject`` targets, and for ``kind: deployment`` targets when the
    ScaledObject is named like the Deployment (``CAPPLAN_SCALER=keda``).
    Arguments are those of :class:`~capplan_core.execution.k8s_common.KubernetesScalerBase`.
    """

    def _custom(self) -> Any:
        from kubernetes.client import CustomObjectsApi

        return CustomObjectsApi(self._clients.get())

    def _read(self, target: TargetSpec) -> dict[str, Any]:
        with k8s_errors("read KEDA ScaledObject", target_key(target)):
            obj = self._custom().get_namespaced_custom_object(
                KEDA_GROUP, KEDA_VERSION, target.namespace, KEDA_PLURAL, target.name,
                _request_timeout=self.request_timeout_s)
        if not isinstance(obj, dict):
            raise ScalerError("invalid", f"ScaledObject {target_key(target)}: unexpected "
                              f"answer {type(obj).__name__}", target=target_key(target))
        return obj

    @staticmethod
    def _floor(obj: dict[str, Any]) -> int:
        spec = obj.get("spec") or {}
        return int(spec.get("minReplicaCount", KEDA_DEFAULT_MIN_REPLICAS) or 0)

    def get_replicas(self, target: TargetSpec) -> int:
        """The ScaledObject's ``spec.minReplicaCount`` (KEDA's default 0 when absent)."""
        return self._floor(self._read(target))

    def read(self, target: TargetSpec) -> LiveReplicas:
        """``spec.minReplicaCount`` and the ScaledObject's ``resourceVersion``."""
        obj = self._read(target)
        return LiveReplicas(self._floor(obj), (obj.get("metadata") or {}).get("resourceVersion"))

    def set_replicas(self, target: TargetSpec, replicas: int, *,
                     expected: LiveReplicas | None = None) -> ScaleOutcome:
        """Patch ``spec.minReplicaCount`` at the ``resourceVersion`` of ``expected`` (or of the
        read made here); no request is sent when it already equals it.

        Raises:
            ScalerError: ``invalid`` when ``replicas`` exceeds ``spec.maxReplicaCount`` (capplan
                never raises KEDA's ceiling); otherwise as the Deployment scaler.
        """
        check_replicas(target, replicas)
        obj = self._read(target)  # the ceiling lives here; the version is the caller's
        before = self._floor(obj) if expected is None else expected.replicas
        rv = ((obj.get("metadata") or {}).get("resourceVersion") if expected is None
              else expected.version)
        if before == replicas:
            return ScaleOutcome(kind="scaledobject", namespace=target.namespace,
                                name=target.name, from_replicas=before, to_replicas=replicas,
                                changed=False, replica_field="spec.minReplicaCount",
                                resource_version=rv)
        ceiling = int((obj.get("spec") or {}).get("maxReplicaCount", KEDA_DEFAULT_MAX_REPLICAS))
        if replicas > ceiling:
            raise ScalerError(
                "invalid", f"ScaledObject {target_key(target)}: floor {replicas} would exceed "
                f"its maxReplicaCount {ceiling}; raise maxReplicaCount or lower the policy's "
                "max_workers", target=target_key(target))
        body: dict[str, Any] = {"spec": {"minReplicaCount": replicas}}
        if rv:
            body["metadata"] = {"resourceVersion": rv}
        with k8s_errors("patch KEDA ScaledObject", target_key(target)):
            patched = self._custom().patch_namespaced_custom_object(
                KEDA_GROUP, KEDA_VERSION, target.namespace, KEDA_PLURAL, target.name, body,
                field_manager="capplan", _content_type=MERGE_PATCH,
                _request_timeout=self.request_timeout_s)
        after = self._floor(patched) if isinstance(patched, dict) else replicas
        if after != replicas:
            raise ScalerError("invalid", f"patched ScaledObject {target_key(target)} floor to "
                              f"{replicas} but the API server answered {after}",
                              target=target_key(target))
        new_rv = (patched.get("metadata") or {}).get("resourceVersion") if isinstance(
            patched, dict) else None
        return ScaleOutcome(kind="scaledobject", namespace=target.namespace, name=target.name,
                            from_replicas=before, to_replicas=replicas, changed=True,
                            replica_field="spec.minReplicaCount", resource_version=new_rv)

    def scale_target_name(self, target: TargetSpec) -> str:
        """Name of the Deployment the ScaledObject scales (``spec.scaleTargetRef``)."""
        ref = (self._read(target).get("spec") or {}).get("scaleTargetRef") or {}
        kind = ref.get("kind", "Deployment")
        if kind != "Deployment" or not ref.get("name"):
            raise ScalerError("invalid", f"ScaledObject {target_key(target)} scales "
                              f"{kind} {ref.get('name')!r}; capplan waits on Deployments only",
                              target=target_key(target))
        return str(ref["name"])

    def wait_ready(self, target: TargetSpec, replicas: int, timeout_s: float) -> ReadyOutcome:
        """Poll the targeted Deployment until at least ``replicas`` pods are ready."""
        deployment = self.scale_target_name(target)
        return wait_deployment_ready(
            self._apps, target.namespace, deployment, replicas, timeout_s, floor_only=True,
            request_timeout_s=self.request_timeout_s, poll_interval_s=self.poll_interval_s,
            clock=self._clock, sleep=self._sleep)
