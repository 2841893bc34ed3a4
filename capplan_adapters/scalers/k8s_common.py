"""Shared plumbing for the Kubernetes adapters: lazy API client, error mapping, ready polling.

The ``kubernetes`` package is imported inside functions only: it is slow to import and the
dry-run path never needs it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from capplan_core.execution.scaler import ReadyOutcome, ScalerError

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

#: (connect, read) seconds for every API call; a hung API server must not hang a flow run.
DEFAULT_REQUEST_TIMEOUT_S: tuple[float, float] = (3.0, 10.0)
MERGE_PATCH = "application/merge-patch+json"


class ClientProvider:
    """Holds an ``ApiClient``: the one given, or one built by ``loader`` on first use."""

    def __init__(
        self,
        api_client: ApiClient | None = None,
        loader: Callable[[], ApiClient] | None = None,
    ) -> None:
        if api_client is None and loader is None:
            raise ValueError("give an api_client or a loader")
        self._client = api_client
        self._loader = loader

    def get(self) -> ApiClient:
        if self._client is None:
            if self._loader is None:  # unreachable: __init__ requires one of the two
                raise ValueError("no api_client and no loader")
            self._client = self._loader()
        return self._client


class KubernetesScalerBase:
    """What both Kubernetes scalers share: the lazy client, timeouts, readiness polling clock.

    Args:
        api_client: an explicit ``kubernetes.client.ApiClient`` (tests), or
        loader: builds one on first use (see :func:`capplan_adapters.scalers.build_scaler`).
        request_timeout_s: (connect, read) seconds per API call.
        poll_interval_s: seconds between readiness polls in ``wait_ready``.
        clock, sleep: injected so readiness tests run without waiting.
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


@contextmanager
def k8s_errors(action: str, what: str) -> Iterator[None]:
    """Translate client exceptions raised inside the block into :class:`ScalerError`.

    Args:
        action: what was being done, e.g. ``"patch scale of Deployment"``.
        what: ``namespace/name`` of the object.
    """
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException
    from urllib3.exceptions import HTTPError as Urllib3Error

    try:
        yield
    except ScalerError:
        raise
    except ApiException as err:
        raise _from_api_exception(err, action, what) from err
    except ConfigException as err:
        raise ScalerError(
            "config",
            f"cannot {action} {what}: no usable Kubernetes credentials ({err})",
            target=what,
        ) from err
    except (Urllib3Error, OSError) as err:
        raise ScalerError(
            "unreachable",
            f"cannot {action} {what}: Kubernetes API unreachable ({type(err).__name__}: "
            f"{_short(err)}); nothing was changed by capplan, re-read before retrying",
            target=what,
        ) from err


def _from_api_exception(err: Any, action: str, what: str) -> ScalerError:
    status = int(err.status or 0)
    detail = _short(getattr(err, "reason", "") or "")
    base = f"cannot {action} {what}: HTTP {status} {detail}".rstrip()
    if status in (401, 403):
        return ScalerError(
            "forbidden",
            f"{base}; check the service account's Role in namespace "
            f"{what.split('/')[0]!r} (see deployments/rbac.yaml)",
            target=what,
            status=status,
        )
    if status == 404:
        return ScalerError(
            "not_found",
            f"{base}; the object does not exist (or the API group is not installed)",
            target=what,
            status=status,
        )
    if status == 409:
        return ScalerError(
            "conflict",
            f"{base}; it changed since it was read, re-read and re-check before retrying",
            target=what,
            status=status,
        )
    if status in (400, 415, 422):
        return ScalerError("invalid", base, target=what, status=status)
    return ScalerError("unreachable", f"{base}; API server error", target=what, status=status)


def _short(err: object, limit: int = 200) -> str:
    text = str(err).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class ReadyState:
    """One observation of a Deployment's rollout."""

    ready_replicas: int
    converged: bool
    message: str


def poll_ready(
    observe: Callable[[], ReadyState],
    *,
    namespace: str,
    name: str,
    desired_replicas: int,
    timeout_s: float,
    poll_interval_s: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ReadyOutcome:
    """Call ``observe`` every ``poll_interval_s`` until it converges or ``timeout_s`` passes.

    Raises:
        ScalerError: from ``observe`` (the API failed while waiting).
    """
    start = clock()
    deadline = start + max(timeout_s, 0.0)
    polls = 0
    while True:
        state = observe()
        polls += 1
        now = clock()
        if state.converged or now >= deadline:
            msg = (
                state.message
                if state.converged
                else (f"timed out after {now - start:.1f} s: {state.message}")
            )
            return ReadyOutcome(
                namespace=namespace,
                name=name,
                desired_replicas=desired_replicas,
                ready_replicas=state.ready_replicas,
                ready=state.converged,
                waited_s=now - start,
                polls=polls,
                message=msg,
            )
        sleep(min(poll_interval_s, deadline - now))


def deployment_ready_state(dep: Any, desired_replicas: int, *, floor_only: bool) -> ReadyState:
    """Judge a ``V1Deployment`` read from the status subresource.

    Converged means the controller saw the latest spec (``observedGeneration``), at least
    ``desired_replicas`` pods are ready and, unless ``floor_only`` (KEDA may run more), no more
    than ``desired_replicas`` pods remain.
    """
    status = dep.status
    ready = int((status.ready_replicas if status else None) or 0)
    total = int((status.replicas if status else None) or 0)
    generation = dep.metadata.generation if dep.metadata else None
    observed = status.observed_generation if status else None
    seen = generation is None or (observed is not None and observed >= generation)
    enough = ready >= desired_replicas
    not_too_many = floor_only or total <= desired_replicas
    converged = seen and enough and not_too_many
    msg = (
        f"{ready} ready / {total} running, want {'>= ' if floor_only else ''}"
        f"{desired_replicas}" + ("" if seen else " (rollout not yet observed)")
    )
    return ReadyState(ready_replicas=ready, converged=converged, message=msg)
