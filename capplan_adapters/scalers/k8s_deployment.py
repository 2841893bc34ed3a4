"""Scale a Deployment through its ``apps/v1`` scale subresource.

RBAC needed (see ``deployments/rbac.yaml``): get/patch ``deployments/scale``, get
``deployments/status``. The write is a JSON merge patch of ``spec.replicas`` carrying the
``resourceVersion`` that was read, so a concurrent writer (an HPA, a person with kubectl) makes
the patch fail with 409 (``conflict``) instead of being silently overwritten.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from capplan_adapters.scalers.k8s_common import (
    MERGE_PATCH,
    KubernetesScalerBase,
    deployment_ready_state,
    k8s_errors,
    poll_ready,
)
from capplan_core.execution.scaler import (
    LiveReplicas,
    ReadyOutcome,
    ScaleOutcome,
    ScalerError,
    check_replicas,
    target_key,
)
from capplan_core.policy import TargetSpec


class KubernetesDeploymentScaler(KubernetesScalerBase):
    """``Scaler`` for ``kind: deployment`` targets.

    Arguments are those of :class:`~capplan_adapters.scalers.k8s_common.KubernetesScalerBase`.
    """

    @staticmethod
    def _check_kind(target: TargetSpec) -> None:
        if target.kind != "deployment":
            raise ScalerError(
                "invalid",
                f"{target_key(target)} is a {target.kind}; scaling its Deployment directly "
                "would fight KEDA's HPA — use the KEDA scaler (CAPPLAN_SCALER=keda or "
                "kubernetes)",
                target=target_key(target),
            )

    def _read_scale(self, target: TargetSpec) -> Any:
        with k8s_errors("read scale of Deployment", target_key(target)):
            return self._apps().read_namespaced_deployment_scale(
                target.name, target.namespace, _request_timeout=self.request_timeout_s
            )

    def get_replicas(self, target: TargetSpec) -> int:
        """``spec.replicas`` of the Deployment's scale subresource."""
        return self.read(target).replicas

    def read(self, target: TargetSpec) -> LiveReplicas:
        """``spec.replicas`` and ``metadata.resourceVersion`` of the scale subresource."""
        self._check_kind(target)
        scale = self._read_scale(target)
        return LiveReplicas(
            int((scale.spec.replicas if scale.spec else None) or 0),
            scale.metadata.resource_version if scale.metadata else None,
        )

    def set_replicas(
        self, target: TargetSpec, replicas: int, *, expected: LiveReplicas | None = None
    ) -> ScaleOutcome:
        """Patch ``spec.replicas`` at the ``resourceVersion`` of ``expected`` (or of a fresh
        read); no request is sent when the count already equals ``replicas``.

        Raises:
            ScalerError: ``forbidden``, ``not_found``, ``conflict`` (changed since
                ``expected`` was read), ``unreachable``, ``invalid``; the Deployment is
                unchanged by this call.
        """
        self._check_kind(target)
        check_replicas(target, replicas)
        live = expected if expected is not None else self.read(target)
        before, rv = live.replicas, live.version
        if before == replicas:
            return ScaleOutcome(
                kind=target.kind,
                namespace=target.namespace,
                name=target.name,
                from_replicas=before,
                to_replicas=replicas,
                changed=False,
                resource_version=rv,
            )
        body: dict[str, Any] = {"spec": {"replicas": replicas}}
        if rv:
            body["metadata"] = {"resourceVersion": rv}
        with k8s_errors("patch scale of Deployment", target_key(target)):
            patched = self._apps().patch_namespaced_deployment_scale(
                target.name,
                target.namespace,
                body,
                field_manager="capplan",
                _content_type=MERGE_PATCH,
                _request_timeout=self.request_timeout_s,
            )
        after = int((patched.spec.replicas if patched.spec else None) or 0)
        if after != replicas:
            raise ScalerError(
                "invalid",
                f"patched {target_key(target)} to {replicas} but the API server answered {after}",
                target=target_key(target),
            )
        return ScaleOutcome(
            kind=target.kind,
            namespace=target.namespace,
            name=target.name,
            from_replicas=before,
            to_replicas=replicas,
            changed=True,
            resource_version=patched.metadata.resource_version if patched.metadata else None,
        )

    def wait_ready(self, target: TargetSpec, replicas: int, timeout_s: float) -> ReadyOutcome:
        """Poll ``status`` until ``replicas`` pods are ready (and no more remain).

        Returns ``ready=False`` on timeout. Raises :class:`ScalerError` if the API fails.
        """
        self._check_kind(target)
        return wait_deployment_ready(
            self._apps,
            target.namespace,
            target.name,
            replicas,
            timeout_s,
            floor_only=False,
            request_timeout_s=self.request_timeout_s,
            poll_interval_s=self.poll_interval_s,
            clock=self._clock,
            sleep=self._sleep,
        )


def wait_deployment_ready(
    apps: Callable[[], Any],
    namespace: str,
    name: str,
    replicas: int,
    timeout_s: float,
    *,
    floor_only: bool,
    request_timeout_s: tuple[float, float],
    poll_interval_s: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> ReadyOutcome:
    """Bounded poll of ``read_namespaced_deployment_status`` (shared with the KEDA scaler)."""
    what = f"{namespace}/{name}"

    def observe() -> Any:
        with k8s_errors("read status of Deployment", what):
            dep = apps().read_namespaced_deployment_status(
                name, namespace, _request_timeout=request_timeout_s
            )
        return deployment_ready_state(dep, replicas, floor_only=floor_only)

    return poll_ready(
        observe,
        namespace=namespace,
        name=name,
        desired_replicas=replicas,
        timeout_s=timeout_s,
        poll_interval_s=poll_interval_s,
        clock=clock,
        sleep=sleep,
    )
