"""The ``Scaler`` port, its result records and error, and the in-memory ``DryRunScaler``.

A scaler moves the worker count of one target (``TargetSpec``: a Kubernetes Deployment, a KEDA
ScaledObject's floor, a supervisord program group). Every adapter keeps the same promises:

* ``read`` returns the live count with the object's version (Kubernetes ``resourceVersion``);
  ``set_replicas(..., expected=that_read)`` writes only if the object is still at that version
  (optimistic concurrency: someone else's write in between is a ``conflict``, never
  overwritten);
* ``set_replicas`` to the live value sends no write and returns ``changed=False`` (idempotent);
* a failure raises :class:`ScalerError` and leaves the target as it was (each change is a single
  write of one field on one object, so nothing is ever half-applied);
* ``wait_ready`` is bounded by ``timeout_s`` and reports, it never raises on a slow rollout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol, runtime_checkable

from capplan_core.policy import TargetSpec

ScalerErrorKind = Literal["unreachable", "forbidden", "not_found", "conflict", "invalid", "config"]

#: Kinds worth retrying later with the same input (network trouble, a concurrent writer).
TRANSIENT_KINDS: frozenset[str] = frozenset({"unreachable", "conflict"})


def target_key(target: TargetSpec) -> str:
    """``namespace/name``: how messages and the dry-run map name a target."""
    return f"{target.namespace}/{target.name}"


class ScalerError(RuntimeError):
    """A scaling call failed; the target was not changed by this call.

    Attributes:
        kind: ``unreachable`` (network, timeout, API server 5xx/429), ``forbidden`` (401/403,
            RBAC), ``not_found`` (404), ``conflict`` (409, someone else wrote first),
            ``invalid`` (bad request or a value the object cannot take), ``config`` (no usable
            credentials).
        target: ``namespace/name`` of the object, or ``""`` when not about one object.
        status: the HTTP status from the API server, when there was one.
    """

    def __init__(
        self, kind: ScalerErrorKind, message: str, *, target: str = "", status: int | None = None
    ) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind: ScalerErrorKind = kind
        self.target = target
        self.status = status

    @property
    def transient(self) -> bool:
        """True when a later retry of the same call may succeed."""
        return self.kind in TRANSIENT_KINDS


@dataclass(frozen=True)
class LiveReplicas:
    """A read of a target: its replica count and the version the count was read at (the
    Kubernetes ``resourceVersion``; None when the adapter has no versions)."""

    replicas: int
    version: str | None = None


@dataclass(frozen=True)
class ScaleOutcome:
    """What ``set_replicas`` did. ``changed`` is False when the target already had the count."""

    kind: str
    namespace: str
    name: str
    from_replicas: int
    to_replicas: int
    changed: bool
    dry_run: bool = False
    replica_field: str = "spec.replicas"
    resource_version: str | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class ReadyOutcome:
    """What ``wait_ready`` saw. ``ready`` is False when ``timeout_s`` ran out first."""

    namespace: str
    name: str
    desired_replicas: int
    ready_replicas: int
    ready: bool
    waited_s: float
    polls: int
    message: str = ""


@runtime_checkable
class Scaler(Protocol):
    """Port through which the executor reads and moves a target's worker count. A target is
    a Kubernetes Deployment, a KEDA ScaledObject (its ``minReplicaCount`` floor) or a
    supervisord program group (its processes up); one read method, one write method."""

    def read(self, target: TargetSpec) -> LiveReplicas:
        """Live worker count and the version it was read at."""
        ...

    def set_replicas(
        self, target: TargetSpec, replicas: int, *, expected: LiveReplicas | None = None
    ) -> ScaleOutcome:
        """Set the count; a no-op (no write) when it already equals ``replicas``.

        With ``expected`` (a :meth:`read`), no second read is made: the write carries
        ``expected.version`` and fails with ``conflict`` if the object changed since.
        """
        ...

    def wait_ready(self, target: TargetSpec, replicas: int, timeout_s: float) -> ReadyOutcome:
        """Poll until ``replicas`` workers are ready or ``timeout_s`` seconds pass."""
        ...


def check_replicas(target: TargetSpec, replicas: int) -> None:
    """Reject a replica count no Kubernetes object can take (before any call is made)."""
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
        raise ScalerError(
            "invalid",
            f"replicas for {target_key(target)} must be a whole number >= 0 (got {replicas!r})",
            target=target_key(target),
        )


_REPLICA_FIELD = {
    "deployment": "spec.replicas",
    "scaledobject": "spec.minReplicaCount",
    "supervisor": "supervisord group: processes in STARTING/RUNNING/BACKOFF",
}


class DryRunScaler:
    """Records what it would do, in memory; nothing leaves the process.

    Args:
        replicas: starting count per ``namespace/name`` (copied; later changes are kept here).
        default_replicas: count for a target missing from ``replicas``.
    """

    def __init__(
        self, replicas: Mapping[str, int] | None = None, *, default_replicas: int = 0
    ) -> None:
        self.replicas: dict[str, int] = dict(replicas or {})
        self.default_replicas = default_replicas
        #: every change it would have made, in order (no-ops are not recorded)
        self.actions: list[ScaleOutcome] = []

    def get_replicas(self, target: TargetSpec) -> int:
        return self.replicas.get(target_key(target), self.default_replicas)

    def _version(self, target: TargetSpec) -> str:
        return str(
            sum(a.namespace == target.namespace and a.name == target.name for a in self.actions)
        )

    def read(self, target: TargetSpec) -> LiveReplicas:
        """The count and a version: how many changes this dry run made to the target."""
        return LiveReplicas(self.get_replicas(target), self._version(target))

    def set_replicas(
        self, target: TargetSpec, replicas: int, *, expected: LiveReplicas | None = None
    ) -> ScaleOutcome:
        check_replicas(target, replicas)
        if expected is not None and expected.version not in (None, self._version(target)):
            raise ScalerError(
                "conflict",
                f"{target_key(target)} changed since it was read (version {expected.version})",
                target=target_key(target),
                status=409,
            )
        before = self.get_replicas(target)
        outcome = ScaleOutcome(
            kind=target.kind,
            namespace=target.namespace,
            name=target.name,
            from_replicas=before,
            to_replicas=replicas,
            changed=before != replicas,
            dry_run=True,
            replica_field=_REPLICA_FIELD[target.kind],
        )
        if outcome.changed:
            self.replicas[target_key(target)] = replicas
            self.actions.append(outcome)
        return outcome

    def wait_ready(self, target: TargetSpec, replicas: int, timeout_s: float) -> ReadyOutcome:
        live = self.get_replicas(target)
        return ReadyOutcome(
            namespace=target.namespace,
            name=target.name,
            desired_replicas=replicas,
            ready_replicas=live,
            ready=live >= replicas,
            waited_s=0.0,
            polls=0,
            message="dry run: nothing to wait for",
        )


@dataclass(frozen=True)
class ReadOnlyScaler:
    """A :class:`Scaler` that reads and never writes: the planning pool's (``pool_role:
    planning``). Its process plans and re-reads targets (a restore's settling, the live count a
    plan starts from) but holds no right to scale; a write is refused here, before any
    request, as the planning ServiceAccount's RBAC would refuse it at the API server."""

    inner: Scaler
    why: str = "this process runs in the planning pool, which never writes to a target"

    def read(self, target: TargetSpec) -> LiveReplicas:
        return self.inner.read(target)

    def set_replicas(
        self, target: TargetSpec, replicas: int, *, expected: LiveReplicas | None = None
    ) -> ScaleOutcome:
        raise ScalerError("forbidden", self.why, target=target_key(target))

    def wait_ready(self, target: TargetSpec, replicas: int, timeout_s: float) -> ReadyOutcome:
        return self.inner.wait_ready(target, replicas, timeout_s)
