"""The two Kubernetes work pools' job templates, derived from one base (docs/security.md,
"Two work pools"; ``capplan rbac job-template --pool planning|scaling``).

``deployments/work-pool-base-job-template.json`` pins everything a run could abuse (image,
command, environment, namespace, ServiceAccount, settings secret). The two pools differ in
exactly two pinned values, set here so that they cannot drift apart:

- **planning** (capacity-plan, approve-plan, collect-metrics, prune, ...): the ServiceAccount
  ``capplan-planner``, which may only *read* the targets, and ``CAPPLAN_POOL_ROLE=planning``,
  so its execute stage hands every step to an apply-step run and its scaler refuses writes;
- **scaling** (apply-step, apply-due): the ServiceAccount that may scale the targets (the base
  template's, ``capplan``), and ``CAPPLAN_POOL_ROLE=scaling``.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

PoolRole = Literal["planning", "scaling"]
#: the ServiceAccount that may only read the targets (``capplan rbac render``'s planner)
PLANNER_SERVICE_ACCOUNT = "capplan-planner"
#: the work pools of prefect.yaml, by role
POOL_NAMES: dict[PoolRole, str] = {"planning": "capplan-process", "scaling": "capplan-scaling"}
ROLE_VARIABLE = "CAPPLAN_POOL_ROLE"


def pool_job_template(
    base: dict[str, Any], role: PoolRole, *, scaler_service_account: str = "capplan"
) -> dict[str, Any]:
    """``base`` (a Prefect Kubernetes base job template) for the pool of ``role``: its pod's
    ServiceAccount and its ``CAPPLAN_POOL_ROLE``, both pinned (not variables)."""
    if role not in POOL_NAMES:
        raise ValueError(f"pool: {role!r} is not one of planning, scaling")
    out = copy.deepcopy(base)
    pod = out["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    pod["serviceAccountName"] = (
        PLANNER_SERVICE_ACCOUNT if role == "planning" else scaler_service_account
    )
    container = pod["containers"][0]
    env = [e for e in container.get("env", []) if e.get("name") != ROLE_VARIABLE]
    container["env"] = [*env, {"name": ROLE_VARIABLE, "value": role}]
    return out
