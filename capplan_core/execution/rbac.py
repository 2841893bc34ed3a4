"""Least-privilege RBAC rendered from the policies (``capplan rbac render``).

One Role and RoleBinding per namespace a policy targets. Every rule names its objects in
``resourceNames``: exactly the policies' targets, nothing else in the namespace.

- ``deployment`` targets: get/patch ``deployments/scale``, get ``deployments`` and
  ``deployments/status`` (the read-back and the readiness wait);
- ``scaledobject`` targets: get/patch ``keda.sh`` ``scaledobjects``, and get the Deployment it
  scales for the readiness wait, which the Role names by the ScaledObject's own name (KEDA's
  usual convention; a ScaledObject scaling a Deployment of another name needs that name added);
- ``supervisor`` targets have no Kubernetes object and render nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from capplan_core.policy import ScalingPolicy

ROLE_NAME = "capplan-scaler"
LABELS = {"app.kubernetes.io/name": "capplan", "app.kubernetes.io/managed-by": "capplan-rbac"}


def _rule(
    groups: list[str], resources: list[str], verbs: list[str], names: Iterable[str]
) -> dict[str, Any]:
    return {
        "apiGroups": groups,
        "resources": resources,
        "verbs": verbs,
        "resourceNames": sorted(set(names)),
    }


def render_rbac(
    policies: Iterable[ScalingPolicy],
    *,
    service_account: str = "capplan",
    service_account_namespace: str = "capplan",
) -> list[dict[str, Any]]:
    """The ServiceAccount, and per target namespace a Role and its RoleBinding."""
    deployments: dict[str, set[str]] = defaultdict(set)
    scaledobjects: dict[str, set[str]] = defaultdict(set)
    for p in policies:
        if p.target.kind == "deployment":
            deployments[p.target.namespace].add(p.target.name)
        elif p.target.kind == "scaledobject":
            scaledobjects[p.target.namespace].add(p.target.name)
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {
                "name": service_account,
                "namespace": service_account_namespace,
                "labels": LABELS,
            },
            "automountServiceAccountToken": True,
        }
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
        docs.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": meta,
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": ROLE_NAME,
                },
                "subjects": [
                    {
                        "kind": "ServiceAccount",
                        "name": service_account,
                        "namespace": service_account_namespace,
                    }
                ],
            }
        )
    return docs
