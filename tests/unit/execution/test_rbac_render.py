"""`capplan rbac render`: a Role per target namespace whose resourceNames are exactly the
policies' targets, valid against the strict Kubernetes schemas; deployments/rbac.yaml is the
render of the demo policies."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import yaml
from typer.testing import CliRunner

from capplan_app.bootstrap import DEMO_POLICIES
from capplan_cli.main import app
from capplan_core.execution.rbac import render_rbac
from capplan_core.policy import load_policies, parse_policies

K8S_VERSION = "1.33"
RBAC = Path(__file__).resolve().parents[3] / "deployments" / "rbac.yaml"


def _policies():
    def pol(name, kind, ns, target):
        return {
            "name": name,
            "queue": name,
            "target": {"kind": kind, "namespace": ns, "name": target},
            "slo": {"wait_p95_seconds": 30},
        }

    return parse_policies(
        {
            "policies": [
                pol("a", "deployment", "workers", "email-worker"),
                pol("b", "deployment", "workers", "thumb-worker"),
                pol("c", "scaledobject", "batch", "report-so"),
                pol("d", "supervisor", "default", "local_group"),
            ]
        }
    )


def test_resource_names_are_exactly_the_targets_and_strictly_valid() -> None:
    docs = render_rbac(_policies())
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    roles = {
        d["metadata"]["namespace"]: d
        for d in docs
        if d["kind"] == "Role" and d["metadata"]["name"] == "capplan-scaler"
    }
    assert set(roles) == {"workers", "batch"}  # the supervisor target renders nothing
    grants = {ns: _grants(role) for ns, role in roles.items()}
    assert grants["workers"] == {
        ("apps", "deployments/scale", ("get", "patch")): ["email-worker", "thumb-worker"],
        ("apps", "deployments", ("get",)): ["email-worker", "thumb-worker"],
        ("apps", "deployments/status", ("get",)): ["email-worker", "thumb-worker"],
    }
    assert grants["batch"] == {
        ("apps", "deployments", ("get",)): ["report-so"],
        ("apps", "deployments/status", ("get",)): ["report-so"],
        ("keda.sh", "scaledobjects", ("get", "patch")): ["report-so"],
    }
    bindings = {
        (b["metadata"]["namespace"], b["roleRef"]["name"]): b["subjects"]
        for b in docs
        if b["kind"] == "RoleBinding"
    }
    assert bindings == {
        (ns, role): [{"kind": "ServiceAccount", "name": account, "namespace": "capplan"}]
        for ns in ("workers", "batch")
        for role, account in (("capplan-scaler", "capplan"), ("capplan-planner", "capplan-planner"))
    }


def _grants(role: dict) -> dict:
    return {
        (g, r, tuple(rule["verbs"])): rule["resourceNames"]
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
    }


def test_the_planning_pool_account_may_read_the_targets_and_never_write() -> None:
    """The planning pool's ServiceAccount (issue 24's "the planning pool cannot scale"): in
    each namespace, ``get`` on exactly what the scaling account may touch, and no other verb;
    the admission policy matches only the scaling account."""
    docs = render_rbac(_policies())
    accounts = {d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"}
    assert accounts == {"capplan", "capplan-planner"}
    roles = {
        (d["metadata"]["namespace"], d["metadata"]["name"]): d for d in docs if d["kind"] == "Role"
    }
    for ns in ("workers", "batch"):
        scaler, planner = (
            _grants(roles[ns, "capplan-scaler"]),
            _grants(roles[ns, "capplan-planner"]),
        )
        assert {verbs for (_, _, verbs) in planner} == {("get",)}
        assert {(g, r): n for (g, r, _), n in planner.items()} == {
            (g, r): n for (g, r, _), n in scaler.items()
        }
    bound = [d for d in docs if d["kind"] == "ValidatingAdmissionPolicy"]
    assert bound and "capplan-planner" not in str(bound)


def test_the_shipped_rbac_is_the_render_of_the_demo_policies(tmp_path: Path) -> None:
    out = tmp_path / "rbac.yaml"
    res = CliRunner().invoke(
        app, ["rbac", "render", "--policy", str(DEMO_POLICIES), "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert out.read_text() == RBAC.read_text(), (
        "re-run `capplan rbac render` into deployments/rbac.yaml"
    )
    targets = {p.target.name for p in load_policies(DEMO_POLICIES)}
    names = {
        n
        for d in yaml.safe_load_all(out.read_text())
        if d["kind"] == "Role"
        for rule in d["rules"]
        for n in rule["resourceNames"]
    }
    assert names == targets


def test_a_bad_policy_file_exits_2_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text(
        "policies:\n  - {name: x, queue: x, target: {namespace: '../kube-system', "
        "name: w}, slo: {wait_p95_seconds: 3}}\n"
    )
    res = CliRunner().invoke(app, ["rbac", "render", "--policy", str(bad)])
    assert res.exit_code == 2 and "target.namespace" in res.output
