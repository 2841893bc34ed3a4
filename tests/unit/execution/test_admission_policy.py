"""The admission policy `capplan rbac render` emits for ScaledObject targets (issue 24): its
CEL rules, evaluated here with cel-python on the objects a patch by capplan's ServiceAccount
would produce. The floor, the ceiling and the capplan-rate trigger's target may change;
repointing scaleTargetRef, or touching any other field or trigger, is refused. The rendered
documents are valid against the strict Kubernetes 1.33 schemas."""

from __future__ import annotations

import copy
from typing import Any

import celpy
import kubernetes_validate
import pytest

from capplan_core.execution.rbac import admission_policy, render_rbac
from capplan_core.policy import parse_policies

OLD: dict[str, Any] = {
    "apiVersion": "keda.sh/v1alpha1",
    "kind": "ScaledObject",
    "metadata": {"name": "report-so", "namespace": "batch"},
    "spec": {
        "scaleTargetRef": {"name": "report-worker"},
        "minReplicaCount": 2,
        "maxReplicaCount": 40,
        "pollingInterval": 15,
        "triggers": [
            {
                "type": "redis",
                "metadata": {"listName": "rq:queue:reports", "listLength": "10"},
            },
            {
                "type": "prometheus",
                "name": "capplan-rate",
                "metadata": {
                    "serverAddress": "http://prometheus:9090",
                    "query": "sum(rate(jobs_total[1m]))",
                    "threshold": "2.5",
                },
            },
        ],
    },
}
CAPPLAN = "system:serviceaccount:capplan:capplan"


def _policy() -> dict[str, Any]:
    (vap, _binding) = admission_policy("capplan", "capplan")
    return vap


def _compile(expr: str) -> Any:
    env = celpy.Environment()
    return env.program(env.compile(expr))


def _refusals(new: dict[str, Any], old: dict[str, Any] = OLD) -> list[str]:
    spec = _policy()["spec"]
    act = {"object": celpy.json_to_cel(new), "oldObject": celpy.json_to_cel(old)}
    return [
        v["message"] for v in spec["validations"] if not _compile(v["expression"]).evaluate(act)
    ]


def _changed(edit: Any) -> dict[str, Any]:
    new = copy.deepcopy(OLD)
    edit(new["spec"])
    return new


def _set(path: tuple[Any, ...], value: Any) -> Any:
    def edit(spec: dict[str, Any]) -> None:
        node = spec
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


@pytest.mark.parametrize(
    "edit",
    [
        _set(("minReplicaCount",), 9),
        _set(("maxReplicaCount",), 60),
        _set(("triggers", 1, "metadata", "threshold"), "1.75"),
        lambda s: (
            s.update(minReplicaCount=12),
            s["triggers"][1]["metadata"].update(threshold="3"),
        ),
    ],
    ids=["floor", "ceiling", "rate-target", "floor-and-rate-target"],
)
def test_what_capplan_writes_is_allowed(edit: Any) -> None:
    assert _refusals(_changed(edit)) == []


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (_set(("scaleTargetRef", "name"), "payments-api"), "repoint"),
        (_set(("scaleTargetRef",), {"name": "report-worker", "kind": "StatefulSet"}), "repoint"),
        (_set(("pollingInterval",), 1), "only spec.minReplicaCount"),
        (_set(("advanced",), {"horizontalPodAutoscalerConfig": {}}), "only spec.minReplicaCount"),
        (lambda s: s.pop("pollingInterval"), "only spec.minReplicaCount"),
        (_set(("triggers", 0, "metadata", "listLength"), "1000"), "other than capplan-rate"),
        (lambda s: s["triggers"].pop(0), "other than capplan-rate"),
        (
            lambda s: s["triggers"].append({"type": "cpu", "metadata": {"value": "50"}}),
            "other than capplan-rate",
        ),
        (
            _set(("triggers", 1, "metadata", "serverAddress"), "http://evil:9090"),
            "only the threshold",
        ),
        (_set(("triggers", 1, "metadata", "query"), "vector(0)"), "only the threshold"),
        (_set(("triggers", 1, "authenticationRef"), {"name": "other"}), "only the threshold"),
        (_set(("triggers", 1, "type"), "cron"), "only the threshold"),
        (
            lambda s: s["triggers"].append(copy.deepcopy(s["triggers"][1])),
            "only the threshold",
        ),
    ],
    ids=[
        "repoint",
        "repoint-kind",
        "polling",
        "advanced",
        "drop-field",
        "other-trigger",
        "drop-trigger",
        "add-trigger",
        "rate-server",
        "rate-query",
        "rate-auth",
        "rate-type",
        "second-rate",
    ],
)
def test_anything_else_is_refused_naming_why(edit: Any, needle: str) -> None:
    refused = _refusals(_changed(edit))
    assert refused and any(needle in m for m in refused), refused


def test_it_binds_only_capplans_account_and_the_documents_are_valid() -> None:
    vap, binding = admission_policy("capplan", "capplan")
    (cond,) = vap["spec"]["matchConditions"]
    match = _compile(cond["expression"])
    for user, matched in (
        (CAPPLAN, True),
        ("alice", False),
        ("system:serviceaccount:x:capplan", False),
    ):
        act = {"request": celpy.json_to_cel({"userInfo": {"username": user}})}
        assert bool(match.evaluate(act)) is matched, user
    for doc in (vap, binding):
        kubernetes_validate.validate(doc, "1.33", strict=True)
    assert binding["spec"] == {"policyName": vap["metadata"]["name"], "validationActions": ["Deny"]}
    rules = vap["spec"]["matchConstraints"]["resourceRules"]
    assert rules == [
        {
            "apiGroups": ["keda.sh"],
            "apiVersions": ["*"],
            "operations": ["UPDATE"],
            "resources": ["scaledobjects"],
        }
    ]


def test_the_render_holds_it_only_when_a_policy_targets_a_scaledobject() -> None:
    def kinds(kind: str) -> set[str]:
        doc = {
            "policies": [
                {
                    "name": "x",
                    "queue": "x",
                    "target": {"kind": kind, "namespace": "batch", "name": "report-so"},
                    "slo": {"wait_p95_seconds": 3},
                }
            ]
        }
        return {d["kind"] for d in render_rbac(parse_policies(doc))}

    assert "ValidatingAdmissionPolicy" in kinds("scaledobject")
    assert "ValidatingAdmissionPolicyBinding" in kinds("scaledobject")
    assert "ValidatingAdmissionPolicy" not in kinds("deployment")
