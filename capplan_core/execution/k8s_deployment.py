"""Scale a Deployment through its ``apps/v1`` scale subresource.

RBAC needed (see ``deployments/rbac.yaml``): get/patch ``deployments/scale``, get
``deployments/status``. The write is a JSON merge patch of ``spec.replicas`` carrying the
``resourceVersion`` that was read, so a concurrent writer (an HPA, a person with kubectl) makes
the patch fail with 409 (``conflict``) instead of being silently overwritten.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from capplan_core.execution.k8s_common import (
    DEFAULT_REQUEST_TIMEOUT_S,
    MERGE_PATCH,
    ClientProvider,
    deployment_ready_state,
    k8s_errors,
    poll_ready,
)
from capplan_core.execution.scaler import (
    ReadyOutcome,
    ScaleOutcome,
    ScalerError,
    check_replicas,
    target_key,
)
from capplan_core.policy import TargetSpec

if TYPE_CHECKING:
    from kubernetes.client import ApiClient


class KubernetesDeploymentScaler:
    """``Scaler`` for ``kind: deployment`` targets.

    Args:
        api_client: an explicit ``kubernetes.client.ApiClient`` (tests), or
        loader: builds one on first use (see :func:`capplan_core.execution.build_scaler`).
        request_timeout_s: (connect, read) seconds per API call.
        poll_interval_s: seconds between readiness polls in :meth:`wait_ready`.
    """

    def __init__(
        self,
        api_client: ApiClient | None = None,
        *,
        loader: Callable[[], ApiClient] | None = None,
        request_timeout_s: tuple[float, float] = DEFAULT_REQUEST_TIMEOUT_S,
        poll_interval_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clients = ClientProvider(api_client, loader)
        self.request_timeout_s = request_timeout_s
        self.poll_interval_s = poll_interval_s
        self._clock = clock
        self._sleep = sleep

    def _apps(self) -> Any:
        from kubernetes.client import AppsV1Api

        return AppsV1Api(self._clients.get())

    @staticmethod
    def _check_kind(target: TargetSpec) -> None:
        if target.kind != "deployment":
            raise ScalerError(
                "invalid",
                f"{target_key(target)} is a {target.kind}; scaling its Deployment directly "
                "would fight KEDA's HPA — use the KEDA scaler (CAPPLAN_SCALER=keda or "
                "kubernetes)", target=target_key(target))

    def _read_scale(self, target: TargetSpec) -> Any:
        with k8s_errors("read scale of Deployment", target_key(target)):
            return self._apps().read_namespaced_deployment_scale(
                target.name, target.namespace, _request_timeout=self.request_timeout_s)

    def get_replicas(self, target: TargetSpec) -> int:
        """``spec.replicas`` of the Deployment's scale subresource."""
        self._check_kind(target)
        scale = self._read_scale(target)
        return int((scale.spec.replicas if scale.spec else None) or 0)

    def set_replicas(self, target: TargetSpec, replicas: int) -> ScaleOutcome:
        """Patch ``spec.replicas``; no request is sent when it already equals ``replicas``.

        Raises:
            ScalerError: ``forbidden``, ``not_found``, ``conflict``, ``unreachable``,
                ``invalid``; the Deployment is unchanged by this call.
        """
        self._check_kind(target)
        check_replicas(target, replicas)
        scale = self._read_scale(target)
        before = int((scale.spec.replicas if scale.spec else None) or 0)
        rv = scale.metadata.resource_version if scale.metadata else None
        if before == replicas:
            return ScaleOutcome(kind=target.kind, namespace=target.namespace, name=target.name,
                                from_replicas=before, to_replicas=replicas, changed=False,
                                resource_version=rv)
        body: dict[str, Any] = {"spec": {"replicas": replicas}}
        if rv:
            body["metadata"] = {"resourceVersion": rv}
        with k8s_errors("patch scale of Deployment", target_key(target)):
            patched = self._apps().patch_namespaced_deployment_scale(
                target.name, target.namespace, body, field_manager="capplan",
                _content_type=MERGE_PATCH, _request_timeout=self.request_timeout_s)
        after = int((patched.spec.replicas if patched.spec else None) or 0)
        if after != replicas:
            raise ScalerError("invalid", f"patched {target_key(target)} to {replicas} but the "
                              f"API server answered {after}", target=target_key(target))
        return ScaleOutcome(
            kind=target.kind, namespace=target.namespace, name=target.name,
            from_replicas=before, to_replicas=replicas, changed=True,
            resource_version=patched.metadata.resource_version if patched.metadata else None)

    def wait_ready(self, target: TargetSpec, replicas: int, timeout_s: float) -> ReadyOutcome:
        """Poll ``status`` until ``replicas`` pods are ready (and no more remain).

        Returns ``ready=False`` on timeout. Raises :class:`ScalerError` if the API fails.
        """
        self._check_kind(target)
        return wait_deployment_ready(
            self._apps, target.namespace, target.name, replicas, timeout_s,
            floor_only=False, request_timeout_s=self.request_timeout_s,
            poll_interval_s=self.poll_interval_s, clock=self._clock, sleep=self._sleep)


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
                name, namespace, _request_timeout=request_timeout_s)
        return deployment_ready_state(dep, replicas, floor_only=floor_only)

    return poll_ready(observe, namespace=namespace, name=name, desired_replicas=replicas,
                      timeout_s=timeout_s, poll_interval_s=poll_interval_s, clock=clock,
                      sleep=sleep)
