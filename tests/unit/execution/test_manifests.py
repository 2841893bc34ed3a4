"""Every file under deployments/ is valid and least-privilege, checked offline.

Built-in kinds are validated with kubernetes-validate's bundled OpenAPI-derived JSON schemas
in strict mode (unknown fields fail); the KEDA ScaledObject, a CRD those schemas lack, against
the subset of its CRD schema capplan relies on; the work-pool template by rendering it with
Prefect's own templating and validating the resulting Job.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

DEPLOYMENTS = Path(__file__).resolve().parents[3] / "deployments"
K8S_VERSION = "1.33"
ALLOWED_RULES = {  # (apiGroup, resource) -> verbs capplan may hold; nothing else
    ("apps", "deployments/scale"): {"get", "patch"},
    ("apps", "deployments"): {"get"},
    ("apps", "deployments/status"): {"get"},
    ("keda.sh", "scaledobjects"): {"get", "patch"},
}
POLICY_NAMESPACES = {"workers", "batch"}  # data/demo/policies.yaml

SCALEDOBJECT_SCHEMA = {  # from KEDA's CRD (keda.sh_scaledobjects.yaml), the fields used here
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": {"type": "object", "required": ["name", "namespace"]},
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "additionalProperties": False,
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string"},
                        "kind": {"type": "string"},
                        "apiVersion": {"type": "string"},
                        "envSourceContainerName": {"type": "string"},
                    },
                },
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "idleReplicaCount": {"type": "integer", "minimum": 0},
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "advanced": {"type": "object"},
                "fallback": {"type": "object"},
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "metadata"],
                        "properties": {
                            "type": {"type": "string"},
                            "metadata": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
    },
}


def load_all() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(DEPLOYMENTS.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append((path.name, doc))
    return docs


def docs_of_kind(kind: str, file: str | None = "rbac.yaml") -> list[dict[str, Any]]:
    """The documents of ``kind`` in ``file`` (default: capplan's own RBAC; None: every file)."""
    return [d for name, d in load_all() if d["kind"] == kind and file in (None, name)]


def validate_builtin(doc: dict[str, Any]) -> None:
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as err:
        where = ".".join(str(p) for p in err.path)
        name = doc["metadata"].get("name") or doc["metadata"].get("generateName")
        pytest.fail(f"{doc['kind']}/{name}: {where}: {err.message}")


@pytest.mark.parametrize(
    "name,doc", load_all(), ids=lambda v: v if isinstance(v, str) else v["kind"]
)
def test_manifest_matches_the_kubernetes_schema(name: str, doc: dict[str, Any]) -> None:
    if doc["apiVersion"].startswith("keda.sh/"):
        jsonschema.validate(doc, SCALEDOBJECT_SCHEMA)
        spec = doc["spec"]
        assert spec.get("minReplicaCount", 0) <= spec.get("maxReplicaCount", 100)
    else:
        validate_builtin(doc)


def test_strict_validation_catches_an_unknown_field() -> None:
    dep, _shared_pool = docs_of_kind("Deployment", "worker-deployment.yaml")
    bad = json.loads(json.dumps(dep))
    bad["spec"]["replica"] = 3  # typo of replicas
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def test_roles_grant_only_the_scaling_verbs() -> None:
    roles = docs_of_kind("Role")
    assert roles, "rbac.yaml defines no Role"
    for role in roles:
        for rule in role["rules"]:
            groups, resources, verbs = rule["apiGroups"], rule["resources"], set(rule["verbs"])
            assert "*" not in groups and "*" not in resources and "*" not in verbs
            assert not rule.get("nonResourceURLs")
            for group in groups:
                for resource in resources:
                    allowed = ALLOWED_RULES.get((group, resource))
                    assert allowed is not None, f"{group}/{resource} is not needed by capplan"
                    assert verbs <= allowed, f"{group}/{resource}: extra verbs {verbs - allowed}"


def test_no_cluster_wide_grants() -> None:
    assert (
        docs_of_kind("ClusterRole", None) == [] and docs_of_kind("ClusterRoleBinding", None) == []
    )


def test_every_policy_namespace_has_a_bound_role_per_pool() -> None:
    accounts = {
        (a["metadata"]["name"], a["metadata"]["namespace"]) for a in docs_of_kind("ServiceAccount")
    }
    assert accounts == {("capplan", "capplan"), ("capplan-planner", "capplan")}
    roles = {(r["metadata"]["namespace"], r["metadata"]["name"]) for r in docs_of_kind("Role")}
    bound: dict[str, set[str]] = {}
    for rb in docs_of_kind("RoleBinding"):
        ns = rb["metadata"]["namespace"]
        assert rb["roleRef"]["kind"] == "Role" and (ns, rb["roleRef"]["name"]) in roles
        [subject] = rb["subjects"]
        assert subject["kind"] == "ServiceAccount"
        assert (subject["name"], subject["namespace"]) in accounts
        bound.setdefault(ns, set()).add(subject["name"])
    assert set(bound) == POLICY_NAMESPACES
    assert all(names == {"capplan", "capplan-planner"} for names in bound.values())
    # the scaling pool's Role grants every verb the Deployment scaler uses (it would get 403
    # otherwise), the planning pool's only get; the demo policies target Deployments only,
    # so no ScaledObject rule is rendered
    for role in docs_of_kind("Role"):
        granted = {
            (g, r): set(rule["verbs"])
            for rule in role["rules"]
            for g in rule["apiGroups"]
            for r in rule["resources"]
        }
        wanted = {k: v for k, v in ALLOWED_RULES.items() if k[0] == "apps"}
        if role["metadata"]["name"] == "capplan-planner":
            wanted = {k: {"get"} for k in wanted}
        assert granted == wanted


#: what no deployment or run may set: pinned in the template's job_configuration (issue 24)
PINNED = ("command", "env", "image", "namespace", "service_account_name", "settings_secret")


def _rendered_job(pool: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The base template (or one pool's, derived by ``capplan rbac job-template``) rendered
    into the Job a Prefect Kubernetes worker submits."""
    from prefect.utilities.templating import apply_values, find_placeholders

    template = json.loads((DEPLOYMENTS / "work-pool-base-job-template.json").read_text())
    if pool is not None:
        from capplan_core.execution.pool_templates import pool_job_template

        template = pool_job_template(template, pool)  # type: ignore[arg-type]
    variables = template["variables"]
    jsonschema.Draft7Validator.check_schema(variables)
    placeholders = {p.name for p in find_placeholders(template["job_configuration"])}
    assert placeholders <= set(variables["properties"]), "placeholder without a variable"
    values = {k: v["default"] for k, v in variables["properties"].items() if "default" in v}
    values |= {"name": "capacity-plan-abc", "labels": {"prefect.io/flow-run-id": "abc"}}
    config = apply_values(template["job_configuration"], values, remove_notset=True)
    job = config["job_manifest"]
    # what the Prefect Kubernetes worker does before submitting (prefect_kubernetes.worker:
    # _populate_env_in_manifest prepends its own variables to a hard-coded env list, and
    # _populate_command_if_not_present sets the args to its flow-run command)
    container = job["spec"]["template"]["spec"]["containers"][0]
    prefect_env = [{"name": "PREFECT__FLOW_RUN_ID", "value": "abc"}]
    container["env"] = [*prefect_env, *container["env"]]
    container.setdefault("args", ["prefect", "flow-run", "execute"])
    return template, job


# prefect-kubernetes' manifest check requires these two keys inside the pod spec (a quirk of
# its base manifest); the API server drops them there as unknown fields. The real ones are set
# on the Job spec, so they are removed before the strict schema check.
PREFECT_POD_SPEC_QUIRKS = ("parallelism", "completions")


def test_work_pool_template_renders_a_valid_job() -> None:
    template, job = _rendered_job()
    pod = job["spec"]["template"]["spec"]
    for key in PREFECT_POD_SPEC_QUIRKS:
        assert pod.pop(key) == job["spec"][key] == 1
    validate_builtin(job)
    assert pod["serviceAccountName"] == "capplan"
    assert pod["containers"][0]["name"] == "prefect-job"  # the Prefect worker requires it
    assert set(template["job_configuration"]) >= {"env", "labels", "name", "namespace"}


def test_the_job_template_pins_what_a_run_could_abuse() -> None:
    """A Prefect user who may start runs must not swap the image or the command (and read the
    settings secret), set an approver's key variable or ``CAPPLAN_SCALER=dry-run``, or pick
    another service account, namespace or settings secret: none of them is a variable, and
    unknown variables are refused (the server validates job variables against this schema;
    tests/integration/flows/test_job_variables_pinned.py shows it refusing them)."""
    template, job = _rendered_job()
    variables = template["variables"]
    assert variables["additionalProperties"] is False
    assert not set(PINNED) & set(variables["properties"]), "a pinned setting is a variable"
    forged = {"env": {"CAPPLAN_APPROVER_KEY_ALICE": "x"}, "image": "evil:1", "command": "id"}
    for key, value in forged.items():
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({key: value}, variables)
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example.com/capplan:0.1.0"
    assert container["envFrom"] == [{"secretRef": {"name": "capplan-settings", "optional": False}}]
    env = {e["name"]: e["value"] for e in container["env"]}  # the last entry of a name wins
    assert env["CAPPLAN_SCALER"] == "kubernetes"
    assert job["metadata"]["namespace"] == template["job_configuration"]["namespace"] == "capplan"


def test_flow_run_image_installs_from_the_lock_file() -> None:
    text = (DEPLOYMENTS / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert "uv sync --frozen --no-dev" in text
    assert re.search(r"^USER (?!root|0\b)", text, re.M), "the image must not run as root"


@pytest.mark.parametrize(
    ("pool", "account"), [("planning", "capplan-planner"), ("scaling", "capplan")]
)
def test_each_pool_template_pins_its_account_and_role(pool: str, account: str) -> None:
    """The two work pools (docs/security.md, "Two work pools") differ only in their pinned
    ServiceAccount and CAPPLAN_POOL_ROLE; both render a valid Job and pin what a run could
    abuse, so a run cannot move itself into the other pool's rights."""
    template, job = _rendered_job(pool)
    pod = job["spec"]["template"]["spec"]
    for key in PREFECT_POD_SPEC_QUIRKS:
        pod.pop(key)
    validate_builtin(job)
    assert pod["serviceAccountName"] == account
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env["CAPPLAN_POOL_ROLE"] == pool and env["CAPPLAN_SCALER"] == "kubernetes"
    assert template["variables"]["additionalProperties"] is False
    assert not set(PINNED) & set(template["variables"]["properties"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {"service_account_name": "capplan", "env": {"CAPPLAN_POOL_ROLE": "scaling"}},
            template["variables"],
        )


def test_each_pool_has_a_worker_that_cannot_scale_and_has_a_memory_limit() -> None:
    """deployments/prefect-workers.yaml: one Prefect worker per work pool of prefect.yaml; the
    workers' own account may run Jobs in capplan's namespace and nothing else (the flow-run
    pods take their pool's ServiceAccount from the job template); each has a memory limit
    (their RSS levels off at ~250 MiB: docs/soak.md)."""
    import yaml as _yaml

    pools = {
        d["work_pool"]["name"]
        for d in _yaml.safe_load((DEPLOYMENTS.parent / "prefect.yaml").read_text())["deployments"]
    }
    workers = docs_of_kind("Deployment", "prefect-workers.yaml")
    served = set()
    for w in workers:
        pod = w["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        served.add(c["command"][c["command"].index("--pool") + 1])
        assert pod["serviceAccountName"] == "prefect-worker"
        assert c["resources"]["limits"]["memory"] == "512Mi"
    assert served == pools == {"capplan-process", "capplan-scaling"}
    (role,) = docs_of_kind("Role", "prefect-workers.yaml")
    assert role["metadata"]["namespace"] == "capplan"
    granted = {
        (g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
    }
    assert not granted & set(ALLOWED_RULES), "the worker's account must not touch targets"
    assert not {("apps", "deployments/scale"), ("keda.sh", "scaledobjects")} & granted
