"""Move the floor of a KEDA ``ScaledObject`` (``keda.sh/v1alpha1``).

capplan sets ``spec.minReplicaCount`` to the planned worker count — the predictive floor —
and KEDA keeps reacting to the queue above it, up to ``spec.maxReplicaCount``. Readiness is
read from the Deployment the ScaledObject targets (``spec.scaleTargetRef.name``).

With ``scaling.strategy: hybrid`` (or ``auto``, for a plan that chose hybrid) capplan also
writes the rate trigger's target per replica with the floor (``HybridRateTarget``): the
trigger named ``capplan-rate`` (a ``prometheus`` trigger's ``threshold``, any other type's
``targetValue``) gets ``capacity_at_slo(floor) /
floor`` — the most demand the floor carries within the SLO, per replica — so KEDA wants no
more than the floor while the floor carries the measured rate, and scales in proportion to a
surprise above it (docs/backtest.md, "hybrid"). Both fields go in one merge patch.

RBAC needed (see ``deployments/rbac.yaml``): get/patch ``scaledobjects.keda.sh``, get
``deployments/status``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from capplan_adapters.scalers.k8s_common import (
    MERGE_PATCH,
    KubernetesScalerBase,
    k8s_errors,
)
from capplan_adapters.scalers.k8s_deployment import wait_deployment_ready
from capplan_core.execution import rbac
from capplan_core.execution.scaler import (
    LiveReplicas,
    ReadyOutcome,
    ScaleOutcome,
    ScalerError,
    check_replicas,
    target_key,
)
from capplan_core.planning.strategy_choice import plan_strategy_of
from capplan_core.planning.window_sizing import hybrid_target_per_replica, slo_terms_from_policy
from capplan_core.policy import ScalingPolicy, TargetSpec
from capplan_core.queueing.sizing import SloTerms

log = logging.getLogger(__name__)

KEDA_GROUP = "keda.sh"
KEDA_VERSION = "v1alpha1"
KEDA_PLURAL = "scaledobjects"
#: KEDA's documented defaults when the fields are absent.
KEDA_DEFAULT_MIN_REPLICAS = 0
KEDA_DEFAULT_MAX_REPLICAS = 100
#: the trigger whose per-replica target a hybrid floor sets, and the key per trigger type
RATE_TRIGGER_NAME = rbac.RATE_TRIGGER_NAME  # the admission policy allows its target only
TARGET_KEY_BY_TYPE = {"prometheus": "threshold"}
DEFAULT_TARGET_KEY = "targetValue"

#: (target, floor) -> the rate trigger's target per replica (jobs/s), or None: floor only
TriggerTarget = Callable[[TargetSpec, int], "float | None"]


@dataclass
class HybridRateTarget:
    """The rate trigger's target per replica for targets whose policy asks for ``hybrid``.

    ``observe`` records, per target, the SLO terms and the service time measured when it was
    planned (the planning cycle calls it); a target never observed, or whose policy is
    ``predictive``, gets None (only the floor moves)."""

    _known: dict[str, tuple[float, SloTerms, float]] = field(default_factory=dict)
    #: a ScaledObject without the ``capplan-rate`` trigger is an error (the policy asks for
    #: hybrid); False for a plan that ``auto`` made hybrid: then only the floor moves, with a
    #: warning, because the policy never asked for a trigger
    required: bool = True

    def observe(
        self,
        policy: ScalingPolicy,
        mean_service_s: float,
        service_scv: float = 1.0,
        strategy: str | None = None,
    ) -> None:
        """``strategy``: what the plan carries out (:func:`plan_strategy_of`); default: the
        policy's ``scaling.strategy``."""
        if not mean_service_s > 0:
            raise ValueError(f"mean_service_s must be > 0, got {mean_service_s!r}")
        key = target_key(policy.target)
        if (strategy or policy.scaling.strategy) != "hybrid":
            self._known.pop(key, None)
            return
        self._known[key] = (
            float(mean_service_s),
            slo_terms_from_policy(policy, 0.0),
            float(service_scv),
        )

    def __call__(self, target: TargetSpec, floor: int) -> float | None:
        known = self._known.get(target_key(target))
        if known is None or floor < 1:
            return None
        mean_s, terms, scv = known
        return hybrid_target_per_replica(floor, mean_s, terms, scv)


def plan_trigger_target(
    policy: ScalingPolicy, details: dict[str, Any] | None
) -> HybridRateTarget | None:
    """The trigger target a step of a plan carries out, from the policy version the plan was
    made under and the plan's details: None unless the plan's strategy is ``hybrid`` (the
    policy's, or for ``auto`` the one the plan recorded, :func:`plan_strategy_of`) and the
    plan measured a service time (``details["state"]``)."""
    details = details or {}
    strategy = plan_strategy_of(policy, details)
    if strategy != "hybrid":
        return None
    state = details.get("state") or {}
    mean_s = state.get("mean_service_s")
    if not isinstance(mean_s, int | float) or not mean_s > 0:
        return None
    target = HybridRateTarget(required=policy.scaling.strategy == "hybrid")
    target.observe(policy, float(mean_s), float(state.get("service_scv") or 1.0), strategy)
    return target


def _rate_trigger_index(triggers: list[Any]) -> int | None:
    """The index of the trigger named ``capplan-rate``, or None."""
    for i, trig in enumerate(triggers):
        if isinstance(trig, dict) and trig.get("name") == RATE_TRIGGER_NAME:
            return i
    return None


def _triggers(obj: dict[str, Any]) -> list[Any]:
    return list((obj.get("spec") or {}).get("triggers") or [])


def _rate_trigger(obj: dict[str, Any], target: TargetSpec) -> tuple[list[Any], int, str]:
    """The ScaledObject's triggers, the index of ``capplan-rate`` and its target key."""
    triggers = _triggers(obj)
    i = _rate_trigger_index(triggers)
    if i is not None:
        kind = str(triggers[i].get("type"))
        return triggers, i, TARGET_KEY_BY_TYPE.get(kind, DEFAULT_TARGET_KEY)
    raise ScalerError(
        "invalid",
        f"ScaledObject {target_key(target)}: the policy asks for the "
        f"hybrid strategy but no trigger is named {RATE_TRIGGER_NAME!r}; name the "
        "arrival-rate trigger so capplan can set its target with the floor",
        target=target_key(target),
    )


def _target_text(value: float) -> str:
    return f"{value:.6g}"


class KedaScaledObjectScaler(KubernetesScalerBase):
    """``Scaler`` that treats the target's ``namespace/name`` as a KEDA ScaledObject.

    Works for ``kind: scaledobject`` targets, and for ``kind: deployment`` targets when the
    ScaledObject is named like the Deployment (``CAPPLAN_SCALER=keda``).
    Arguments are those of :class:`~capplan_adapters.scalers.k8s_common.KubernetesScalerBase`,
    plus ``trigger_target`` (e.g. a :class:`HybridRateTarget`): when it gives a value for a
    target and floor, the rate trigger's target moves with the floor.
    """

    def __init__(
        self, *args: Any, trigger_target: TriggerTarget | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.trigger_target = trigger_target

    def _custom(self) -> Any:
        from kubernetes.client import CustomObjectsApi

        return CustomObjectsApi(self._clients.get())

    def _read(self, target: TargetSpec) -> dict[str, Any]:
        with k8s_errors("read KEDA ScaledObject", target_key(target)):
            obj = self._custom().get_namespaced_custom_object(
                KEDA_GROUP,
                KEDA_VERSION,
                target.namespace,
                KEDA_PLURAL,
                target.name,
                _request_timeout=self.request_timeout_s,
            )
        if not isinstance(obj, dict):
            raise ScalerError(
                "invalid",
                f"ScaledObject {target_key(target)}: unexpected answer {type(obj).__name__}",
                target=target_key(target),
            )
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

    def set_replicas(
        self, target: TargetSpec, replicas: int, *, expected: LiveReplicas | None = None
    ) -> ScaleOutcome:
        """Patch ``spec.minReplicaCount`` (and, with ``trigger_target``, the rate trigger's
        target) at the ``resourceVersion`` of ``expected`` (or of the read made here); no
        request is sent when both already hold.

        Raises:
            ScalerError: ``invalid`` when ``replicas`` exceeds ``spec.maxReplicaCount`` (capplan
                never raises KEDA's ceiling); otherwise as the Deployment scaler.
        """
        check_replicas(target, replicas)
        obj = self._read(target)  # the ceiling lives here; the version is the caller's
        before = self._floor(obj) if expected is None else expected.replicas
        rv = (
            (obj.get("metadata") or {}).get("resourceVersion")
            if expected is None
            else expected.version
        )
        spec_patch: dict[str, Any] = {}
        if before != replicas:
            spec_patch["minReplicaCount"] = replicas
        per_replica = self.trigger_target(target, replicas) if self.trigger_target else None
        optional = not getattr(self.trigger_target, "required", True)
        if per_replica is not None and optional and _rate_trigger_index(_triggers(obj)) is None:
            log.warning(
                "ScaledObject %s has no trigger named %s: the plan chose hybrid "
                "(scaling.strategy: auto), so only the floor moves; name the arrival-rate "
                "trigger to let KEDA react above it",
                target_key(target),
                RATE_TRIGGER_NAME,
            )
            per_replica = None
        if per_replica is not None:
            triggers, i, key = _rate_trigger(obj, target)
            meta = dict(triggers[i].get("metadata") or {})
            if meta.get(key) != _target_text(per_replica):
                meta[key] = _target_text(per_replica)
                triggers[i] = {**triggers[i], "metadata": meta}
                spec_patch["triggers"] = triggers  # a merge patch replaces the whole list
        field_name = "spec.minReplicaCount" + (
            f" + triggers[{RATE_TRIGGER_NAME}]" if per_replica is not None else ""
        )
        if not spec_patch:
            return ScaleOutcome(
                kind="scaledobject",
                namespace=target.namespace,
                name=target.name,
                from_replicas=before,
                to_replicas=replicas,
                changed=False,
                replica_field=field_name,
                resource_version=rv,
            )
        ceiling = int((obj.get("spec") or {}).get("maxReplicaCount", KEDA_DEFAULT_MAX_REPLICAS))
        if replicas > ceiling:
            raise ScalerError(
                "invalid",
                f"ScaledObject {target_key(target)}: floor {replicas} would exceed "
                f"its maxReplicaCount {ceiling}; raise maxReplicaCount or lower the policy's "
                "max_workers",
                target=target_key(target),
            )
        body: dict[str, Any] = {"spec": spec_patch}
        if rv:
            body["metadata"] = {"resourceVersion": rv}
        with k8s_errors("patch KEDA ScaledObject", target_key(target)):
            patched = self._custom().patch_namespaced_custom_object(
                KEDA_GROUP,
                KEDA_VERSION,
                target.namespace,
                KEDA_PLURAL,
                target.name,
                body,
                field_manager="capplan",
                _content_type=MERGE_PATCH,
                _request_timeout=self.request_timeout_s,
            )
        after = self._floor(patched) if isinstance(patched, dict) else replicas
        if after != replicas:
            raise ScalerError(
                "invalid",
                f"patched ScaledObject {target_key(target)} floor to "
                f"{replicas} but the API server answered {after}",
                target=target_key(target),
            )
        new_rv = (
            (patched.get("metadata") or {}).get("resourceVersion")
            if isinstance(patched, dict)
            else None
        )
        return ScaleOutcome(
            kind="scaledobject",
            namespace=target.namespace,
            name=target.name,
            from_replicas=before,
            to_replicas=replicas,
            changed=True,
            replica_field=field_name,
            resource_version=new_rv,
        )

    def scale_target_name(self, target: TargetSpec) -> str:
        """Name of the Deployment the ScaledObject scales (``spec.scaleTargetRef``)."""
        ref = (self._read(target).get("spec") or {}).get("scaleTargetRef") or {}
        kind = ref.get("kind", "Deployment")
        if kind != "Deployment" or not ref.get("name"):
            raise ScalerError(
                "invalid",
                f"ScaledObject {target_key(target)} scales "
                f"{kind} {ref.get('name')!r}; capplan waits on Deployments only",
                target=target_key(target),
            )
        return str(ref["name"])

    def wait_ready(self, target: TargetSpec, replicas: int, timeout_s: float) -> ReadyOutcome:
        """Poll the targeted Deployment until at least ``replicas`` pods are ready."""
        deployment = self.scale_target_name(target)
        return wait_deployment_ready(
            self._apps,
            target.namespace,
            deployment,
            replicas,
            timeout_s,
            floor_only=True,
            request_timeout_s=self.request_timeout_s,
            poll_interval_s=self.poll_interval_s,
            clock=self._clock,
            sleep=self._sleep,
        )
