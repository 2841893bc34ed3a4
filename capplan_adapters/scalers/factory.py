"""Build a ``Scaler`` by name, loading Kubernetes credentials lazily (on the first API call).

Credentials, in order: an explicit ``ApiClient`` (tests); ``kubeconfig`` / ``context`` when
given; the in-cluster service account when running in a pod; else the default kubeconfig
(``$KUBECONFIG`` or ``~/.kube/config``). Nothing is read at import time or by this function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Literal

from pydantic import SecretStr

from capplan_adapters.scalers.k8s_common import DEFAULT_REQUEST_TIMEOUT_S, ClientProvider
from capplan_adapters.scalers.k8s_deployment import KubernetesDeploymentScaler
from capplan_adapters.scalers.k8s_keda import KedaScaledObjectScaler, TriggerTarget
from capplan_core.execution.scaler import (
    DryRunScaler,
    LiveReplicas,
    ReadyOutcome,
    ScaleOutcome,
    Scaler,
    ScalerError,
)
from capplan_core.policy import TargetSpec

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

ScalerKind = Literal["dry-run", "kubernetes", "deployment", "keda", "supervisor"]
SCALER_KINDS: tuple[str, ...] = ("dry-run", "kubernetes", "deployment", "keda", "supervisor")
#: urllib3 retries per call: connection failures only (a PATCH is never re-sent after it
#: reached the server; urllib3 does not retry PATCH on read errors).
DEFAULT_CONNECT_RETRIES = 2


class KubernetesScaler:
    """Routes each target by its ``kind``: ``deployment`` → scale subresource,
    ``scaledobject`` → KEDA floor. One lazily built ``ApiClient`` is shared."""

    def __init__(
        self, deployment: KubernetesDeploymentScaler, keda: KedaScaledObjectScaler
    ) -> None:
        self.deployment = deployment
        self.keda = keda

    def _for(self, target: TargetSpec) -> Scaler:
        return self.keda if target.kind == "scaledobject" else self.deployment

    def get_replicas(self, target: TargetSpec) -> int:
        return self._for(target).read(target).replicas

    def read(self, target: TargetSpec) -> LiveReplicas:
        return self._for(target).read(target)

    def set_replicas(
        self, target: TargetSpec, replicas: int, *, expected: LiveReplicas | None = None
    ) -> ScaleOutcome:
        return self._for(target).set_replicas(target, replicas, expected=expected)

    def wait_ready(self, target: TargetSpec, replicas: int, timeout_s: float) -> ReadyOutcome:
        return self._for(target).wait_ready(target, replicas, timeout_s)


def credentials_loader(
    kubeconfig: str | None = None,
    context: str | None = None,
    *,
    connect_retries: int = DEFAULT_CONNECT_RETRIES,
) -> Callable[[], ApiClient]:
    """A function that builds an ``ApiClient`` from the credentials described above.

    The returned function raises :class:`ScalerError` (``config``) when none are usable.
    """

    def load() -> ApiClient:
        from kubernetes import config as k8s_config
        from kubernetes.client import ApiClient, Configuration
        from kubernetes.config.config_exception import ConfigException

        cfg = Configuration()
        try:
            if kubeconfig is None and context is None and _in_cluster():
                k8s_config.load_incluster_config(client_configuration=cfg)
            else:
                k8s_config.load_kube_config(
                    config_file=kubeconfig,
                    context=context,
                    client_configuration=cfg,
                    persist_config=False,
                )
        except (ConfigException, OSError, TypeError, ValueError) as err:
            where = kubeconfig or "the in-cluster service account or ~/.kube/config"
            ctx = f" (context {context!r})" if context else ""
            raise ScalerError(
                "config", f"no usable Kubernetes credentials from {where}{ctx}: {err}"
            ) from err
        cfg.retries = connect_retries
        return ApiClient(configuration=cfg)

    return load


def _in_cluster() -> bool:
    import os

    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and os.path.exists(
        "/var/run/secrets/kubernetes.io/serviceaccount/token"
    )


def build_scaler(
    kind: str,
    kubeconfig: str | None = None,
    context: str | None = None,
    *,
    api_client: ApiClient | None = None,
    replicas: Mapping[str, int] | None = None,
    default_replicas: int = 0,
    request_timeout_s: tuple[float, float] = DEFAULT_REQUEST_TIMEOUT_S,
    poll_interval_s: float = 2.0,
    supervisor_url: str | None = None,
    supervisor_username: str | None = None,
    supervisor_password: SecretStr | str | None = None,
    trigger_target: TriggerTarget | None = None,
) -> Scaler:
    """Build the scaler named by ``kind`` (``CAPPLAN_SCALER``).

    Args:
        kind: ``dry-run`` (in memory, seeded from ``replicas`` keyed ``namespace/name`` and
            ``default_replicas``); ``kubernetes`` (route by each target's kind);
            ``deployment`` (scale subresource only); ``keda`` (every target is a ScaledObject
            of the same namespace/name); ``supervisor`` (every target is a supervisord group,
            over ``supervisor_url`` with the optional basic-auth credentials).
        kubeconfig, context: kubeconfig file and context; default: in-cluster, then
            ``~/.kube/config``.
        api_client: use this client instead of loading credentials (tests).
        request_timeout_s: (connect, read) seconds per API call.
        poll_interval_s: seconds between readiness polls.
        trigger_target: for ScaledObjects of a ``hybrid`` policy, the rate trigger's target
            per replica that moves with the floor (:func:`k8s_keda.plan_trigger_target`).

    Raises:
        ScalerError: ``invalid`` for an unknown ``kind``; ``config`` for ``supervisor``
            without a usable URL. Credential problems surface on the first call, not here.
    """
    if kind == "dry-run":
        return DryRunScaler(replicas, default_replicas=default_replicas)
    if kind == "supervisor":
        if not supervisor_url:
            raise ScalerError(
                "config",
                "the supervisor scaler needs a supervisord URL "
                "(CAPPLAN_SUPERVISOR_URL: http://host:port/RPC2 or "
                "unix:///path.sock)",
            )
        from capplan_adapters.scalers.supervisor import SupervisorScaler

        return SupervisorScaler(supervisor_url, supervisor_username, supervisor_password)
    if kind not in SCALER_KINDS:
        raise ScalerError(
            "invalid", f"unknown scaler kind {kind!r}; choose one of {', '.join(SCALER_KINDS)}"
        )
    loader = None if api_client is not None else credentials_loader(kubeconfig, context)
    shared = ClientProvider(api_client, loader)  # one client for both adapters, built once
    deployment = KubernetesDeploymentScaler(
        loader=shared.get, request_timeout_s=request_timeout_s, poll_interval_s=poll_interval_s
    )
    keda = KedaScaledObjectScaler(
        loader=shared.get,
        request_timeout_s=request_timeout_s,
        poll_interval_s=poll_interval_s,
        trigger_target=trigger_target,
    )
    if kind == "deployment":
        return deployment
    if kind == "keda":
        return keda
    return KubernetesScaler(deployment, keda)
