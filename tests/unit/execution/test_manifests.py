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


def docs_of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for _, d in load_all() if d["kind"] == kind]


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
    (dep,) = docs_of_kind("Deployment")
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
    assert docs_of_kind("ClusterRole") == [] and docs_of_kind("ClusterRoleBinding") == []


def test_every_policy_namespace_has_a_bound_role() -> None:
    (sa,) = docs_of_kind("ServiceAccount")
    roles = {(r["metadata"]["namespace"], r["metadata"]["name"]) for r in docs_of_kind("Role")}
    bound = set()
    for rb in docs_of_kind("RoleBinding"):
        ns = rb["metadata"]["namespace"]
        assert rb["roleRef"]["kind"] == "Role" and (ns, rb["roleRef"]["name"]) in roles
        assert rb["subjects"] == [
            {
                "kind": "ServiceAccount",
                "name": sa["metadata"]["name"],
                "namespace": sa["metadata"]["namespace"],
            }
        ]
        bound.add(ns)
    assert bound == POLICY_NAMESPACES
    # each Role grants every verb the Deployment scaler uses (it would get 403 otherwise);
    # the demo policies target Deployments only, so no ScaledObject rule is rendered
    for role in docs_of_kind("Role"):
        granted = {
            (g, r): set(rule["verbs"])
            for rule in role["rules"]
            for g in rule["apiGroups"]
            for r in rule["resources"]
        }
        assert granted == {k: v for k, v in ALLOWED_RULES.items() if k[0] == "apps"}


def _rendered_job() -> tuple[dict[str, Any], dict[str, Any]]:
    from prefect.utilities.templating import apply_values, find_placeholders

    template = json.loads((DEPLOYMENTS / "work-pool-base-job-template.json").read_text())
    variables = template["variables"]
    jsonschema.Draft7Validator.check_schema(variables)
    placeholders = {p.name for p in find_placeholders(template["job_configuration"])}
    assert placeholders <= set(variables["properties"]), "placeholder without a variable"
    values = {k: v["default"] for k, v in variables["properties"].items() if "default" in v}
    values |= {
        "name": "capacity-plan-abc",
        "labels": {"prefect.io/flow-run-id": "abc"},
        "command": ["prefect", "flow-run", "execute"],
    }
    config = apply_values(template["job_configuration"], values, remove_notset=True)
    job = config["job_manifest"]
    # the Prefect worker turns the env mapping into a container env list before submitting
    container = job["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": k, "value": v} for k, v in container["env"].items()]
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
    assert set(template["job_configuration"]) >= {
        "command",
        "env",
        "labels",
        "name",
        "namespace",
        "job_manifest",
    }


def test_flow_run_image_installs_from_the_lock_file() -> None:
    text = (DEPLOYMENTS / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert "uv sync --frozen --no-dev" in text
    assert re.search(r"^USER (?!root|0\b)", text, re.M), "the image must not run as root"
