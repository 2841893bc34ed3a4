"""The Grafana dashboard and the alert rules use only metrics the exporter exposes, and the
dashboard shows every one of them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from ops_fake_store import NOW, FakeOpsStore
from prometheus_client import CollectorRegistry

from capplan_cli.exporter import OpsCollector

DEPLOY = Path(__file__).resolve().parents[3] / "deployments"
DASHBOARD = DEPLOY / "grafana" / "capplan-dashboard.json"
RULES = DEPLOY / "prometheus" / "capplan-alerts.yml"
PROMETHEUS_OWN = {"up"}  # Prometheus's own per-target series
KEYWORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
}


def exposed() -> tuple[set[str], set[str]]:
    """(family names, sample names) the exporter serves, from a store with every kind of row."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(OpsCollector(FakeOpsStore(), clock=lambda: NOW))
    fams = list(reg.collect())
    return {f.name for f in fams}, {s.name for f in fams for s in f.samples}


def metric_names(expr: str) -> set[str]:
    """Series names an expression selects: identifiers that are not functions, keywords,
    label names in grouping clauses, label matchers, range selectors or strings."""
    e = re.sub(r'"[^"]*"', "", expr)
    e = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", e)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        following = e[m.end() :].lstrip()
        if following.startswith("(") or m.group().lower() in KEYWORDS:
            continue
        if m.start() > 0 and (e[m.start() - 1].isdigit() or e[m.start() - 1] == "."):
            continue  # the exponent or unit of a number literal
        names.add(m.group())
    return names


def dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]


def test_metric_names_parser_finds_series_only() -> None:
    assert metric_names('histogram_quantile(0.95, sum by (le, decision) (x_bucket{a="b"}))') == {
        "x_bucket"
    }
    assert metric_names("time() - y > 2 * 1800 or delta(z[30m]) > 0") == {"y", "z"}


def test_dashboard_is_grafana_json_with_a_prometheus_datasource_variable() -> None:
    dash = json.loads(DASHBOARD.read_text())
    var = next(v for v in dash["templating"]["list"] if v["name"] == "datasource")
    assert (var["type"], var["query"]) == ("datasource", "prometheus")
    assert dash["uid"] and dash["title"] and dash["schemaVersion"] >= 36
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for p in dash["panels"]:
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"] and set(p["gridPos"]) == {"x", "y", "w", "h"}, p["title"]
        assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24, p["title"]


def test_every_dashboard_expr_uses_only_exposed_metrics() -> None:
    _, sample_names = exposed()
    for expr in dashboard_exprs():
        unknown = metric_names(expr) - sample_names
        assert not unknown, f"{expr!r} selects {unknown}, which capplan exporter never serves"


def test_the_dashboard_shows_every_exposed_metric() -> None:
    families, _ = exposed()
    text = " ".join(dashboard_exprs())
    missing = {f for f in families if f not in text}
    assert not missing, f"no panel for {missing}"


def test_alert_rules_use_only_exposed_metrics() -> None:
    _, sample_names = exposed()
    rules = yaml.safe_load(RULES.read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    assert {r["alert"] for g in rules["groups"] for r in g["rules"]} >= {
        "CapplanCycleStale",
        "CapplanStepFailed",
        "CapplanPlanAwaitingApprovalTooLong",
        "CapplanQueueFailed",
    }
    for expr in exprs:
        unknown = metric_names(expr) - sample_names - PROMETHEUS_OWN
        assert not unknown, f"{expr!r} selects {unknown}"
