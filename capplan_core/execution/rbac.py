"""Least-privilege RBAC rendered from the policies (``capplan rbac render``).

One Role and RoleBinding per namespace a policy targets, for each of the two work pools'
ServiceAccounts (docs/security.md, "Two work pools"): the scaling pool's may read and scale,
the planning pool's (``capplan-planner``) may only ``get``. Every rule names its objects in
``resourceNames``: exactly the policies' targets, nothing else in the namespace.

- ``deployment`` targets: get/patch ``deployments/scale``, get ``deployments`` and
  ``deployments/status`` (the read-back and the readiness wait);
- ``scaledobject`` targets: get/patch ``keda.sh`` ``scaledobjects``, and get the Deployment it
  scales for the readiness wait, which the Role names by the ScaledObject's own name (KEDA's
  usual convention; a ScaledObject scaling a Deployment of another name needs that name added);
- ``supervisor`` targets have no Kubernetes object and render nothing.

RBAC cannot say *which fields* a patch may change: ``patch`` on a ScaledObject would let the
token's holder repoint ``spec.scaleTargetRef``, and KEDA would then scale any workload in the
namespace. So the render also holds a ``ValidatingAdmissionPolicy`` (CEL, Kubernetes >= 1.30)
and its binding: an update of a ``keda.sh`` ScaledObject *by capplan's ServiceAccount* may
change ``spec.minReplicaCount`` and ``spec.maxReplicaCount``, and the ``metadata.threshold`` /
``metadata.targetValue`` of the trigger named ``capplan-rate`` (the hybrid strategy's per-
replica target), and nothing else in ``spec``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from capplan_core.execution.pool_templates import PLANNER_SERVICE_ACCOUNT
from capplan_core.policy import ScalingPolicy

ROLE_NAME = "capplan-scaler"
#: the planning pool's Role: ``get`` on what the scaler's Role names, nothing else
PLANNER_ROLE_NAME = "capplan-planner"
LABELS = {"app.kubernetes.io/name": "capplan", "app.kubernetes.io/managed-by": "capplan-rbac"}
ADMISSION_POLICY_NAME = "capplan-scaledobject-fields"
#: the KEDA trigger whose per-replica target the hybrid strategy writes
RATE_TRIGGER_NAME = "capplan-rate"
#: what capplan may change in a ScaledObject's spec, and in its rate trigger's metadata
SPEC_FIELDS = ("minReplicaCount", "maxReplicaCount")
TRIGGER_FIELDS = ("threshold", "targetValue")


def _cel_list(items: Iterable[str]) -> str:
    return "[" + ", ".join(f"'{i}'" for i in items) + "]"


def _rate(var: str) -> str:
    return f"(has({var}.name) && {var}.name == '{RATE_TRIGGER_NAME}')"


#: the admission policy's validations: (CEL expression, message); ``object``/``oldObject`` are
#: the ScaledObject after and before the update
SCALEDOBJECT_VALIDATIONS: tuple[tuple[str, str], ...] = (
    (
        "object.spec.scaleTargetRef == oldObject.spec.scaleTargetRef",
        "capplan may not repoint a ScaledObject (spec.scaleTargetRef)",
    ),
    (
        f"object.spec.all(k, k in {_cel_list((*SPEC_FIELDS, 'triggers'))} "
        "|| (k in oldObject.spec && object.spec[k] == oldObject.spec[k])) "
        f"&& oldObject.spec.all(k, k in {_cel_list((*SPEC_FIELDS, 'triggers'))} "
        "|| k in object.spec)",
        "capplan may change only spec.minReplicaCount and spec.maxReplicaCount of a "
        "ScaledObject (and its capplan-rate trigger's target)",
    ),
    (
        f"object.spec.triggers.filter(t, !{_rate('t')}) "
        f"== oldObject.spec.triggers.filter(t, !{_rate('t')})",
        "capplan may not add, remove or change a trigger other than capplan-rate",
    ),
    (
        f"object.spec.triggers.filter(n, {_rate('n')}).size() "
        f"== oldObject.spec.triggers.filter(o, {_rate('o')}).size() "
        f"&& object.spec.triggers.filter(n, {_rate('n')}).all(n, "
        f"oldObject.spec.triggers.exists(o, {_rate('o')} "
        "&& n.all(k, k == 'metadata' || (k in o && o[k] == n[k])) "
        "&& o.all(k, k == 'metadata' || k in n) "
        f"&& n.metadata.all(k, k in {_cel_list(TRIGGER_FIELDS)} "
        "|| (k in o.metadata && o.metadata[k] == n.metadata[k])) "
        f"&& o.metadata.all(k, k in {_cel_list(TRIGGER_FIELDS)} || k in n.metadata)))",
        "capplan may change only the threshold / targetValue of the capplan-rate trigger",
    ),
)


def admission_policy(service_account: str, namespace: str) -> list[dict[str, Any]]:
    """The ValidatingAdmissionPolicy that limits which ScaledObject fields capplan's
    ServiceAccount may change (module doc), and its binding (deny, cluster-wide: it matches
    only that account's requests)."""
    user = f"system:serviceaccount:{namespace}:{service_account}"
    meta = {"name": ADMISSION_POLICY_NAME, "labels": LABELS}
    return [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": meta,
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": ["keda.sh"],
                            "apiVersions": ["*"],
                            "operations": ["UPDATE"],
                            "resources": ["scaledobjects"],
                        }
                    ]
                },
                "matchConditions": [
                    {"name": "capplan-only", "expression": f"request.userInfo.username == '{user}'"}
                ],
                "validations": [
                    {"expression": expr, "message": msg} for expr, msg in SCALEDOBJECT_VALIDATIONS
                ],
            },
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": meta,
            "spec": {"policyName": ADMISSION_POLICY_NAME, "validationActions": ["Deny"]},
        },
    ]


def _rule(
    groups: list[str], resources: list[str], verbs: list[str], names: Iterable[str]
) -> dict[str, Any]:
    return {
        "apiGroups": groups,
        "resources": resources,
        "verbs": verbs,
        "resourceNames": sorted(set(names)),
    }


def _binding(meta: dict[str, Any], role: str, account: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
    }


def _service_account(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace, "labels": LABELS},
        "automountServiceAccountToken": True,
    }


def render_rbac(
    policies: Iterable[ScalingPolicy],
    *,
    service_account: str = "capplan",
    service_account_namespace: str = "capplan",
    planner_service_account: str = PLANNER_SERVICE_ACCOUNT,
) -> list[dict[str, Any]]:
    """Two ServiceAccounts, one per work pool (docs/security.md, "Two work pools"): the
    scaling pool's (``service_account``), which may read and scale the targets, and the
    planning pool's (``planner_service_account``), which may only read them; per target
    namespace a Role and RoleBinding for each; and (when a policy targets a ScaledObject) the
    admission policy that limits the fields the scaling account may patch."""
    deployments: dict[str, set[str]] = defaultdict(set)
    scaledobjects: dict[str, set[str]] = defaultdict(set)
    for p in policies:
        if p.target.kind == "deployment":
            deployments[p.target.namespace].add(p.target.name)
        elif p.target.kind == "scaledobject":
            scaledobjects[p.target.namespace].add(p.target.name)
    docs: list[dict[str, Any]] = [
        _service_account(service_account, service_account_namespace),
        _service_account(planner_service_account, service_account_namespace),
    ]
    for ns in sorted(set(deployments) | set(scaledobjects)):
        rules = []
        if deployments[ns]:
            rules.append(_rule(["apps"], ["deployments/scale"], ["get", "patch"], deployments[ns]))
        readable = deployments[ns] | scaledobjects[ns]
        rules.append(_rule(["apps"], ["deployments", "deployments/status"], ["get"], readable))
        if scaledobjects[ns]:
            rules.append(_rule(["keda.sh"], ["scaledobjects"], ["get", "patch"], scaledobjects[ns]))
        meta = {"name": ROLE_NAME, "namespace": ns, "labels": LABELS}
        docs.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": meta,
                "rules": rules,
            }
        )
        docs.append(_binding(meta, ROLE_NAME, service_account, service_account_namespace))
        # the planning pool reads what the scaling pool may write, and writes nothing
        read_only = [{**r, "verbs": ["get"]} for r in rules]
        meta = {"name": PLANNER_ROLE_NAME, "namespace": ns, "labels": LABELS}
        docs.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": meta,
                "rules": read_only,
            }
        )
        docs.append(
            _binding(meta, PLANNER_ROLE_NAME, planner_service_account, service_account_namespace)
        )
    if any(scaledobjects.values()):
        docs += admission_policy(service_account, service_account_namespace)
    return docs
