"""``capplan plan`` exit codes (issue 13): 2 on bad input naming the field and the value, 1 when
any queue failed (the JSON still printed), 0 when every queue planned or was skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import capplan_cli.plan_cmd as plan_cmd
from capplan_cli.main import app

POLICY = {
    "name": "emails",
    "queue": "emails",
    "target": {"name": "email-worker"},
    "slo": {"wait_p95_seconds": 30},
}


def _policy_file(tmp_path: Path, **scaling: object) -> Path:
    path = tmp_path / "policies.yaml"
    path.write_text(yaml.safe_dump({"policies": [{**POLICY, "scaling": scaling}]}))
    return path


@pytest.mark.parametrize(("value", "shown"), [("10", "'10'"), (True, "True"), (1e21, "1e+21")])
def test_bad_policy_value_exits_2_naming_the_field_and_the_value(tmp_path, value, shown):
    res = CliRunner().invoke(
        app,
        [
            "plan",
            "--policy",
            str(_policy_file(tmp_path, max_workers=value)),
            "--metrics",
            "data/demo/metrics.csv.gz",
            "--json",
        ],
    )
    assert res.exit_code == 2
    assert "policy 'emails': scaling.max_workers" in res.output and f"(got {shown})" in res.output


def _run_returning(monkeypatch, results):
    # the flow's per-queue outcomes, as capacity_plan returns them (a failed child run
    # becomes {"status": "failed", "error": ...}); the flow itself is tested elsewhere
    monkeypatch.setattr(plan_cmd, "run_capacity_plan", lambda *a, **k: results)


def test_a_failed_queue_exits_1_and_still_prints_every_queue(tmp_path, monkeypatch):
    _run_returning(
        monkeypatch,
        [
            {"queue": "emails", "policy": "emails", "mode": "manual", "status": "proposed"},
            {
                "queue": "thumbs",
                "policy": "thumbs",
                "mode": "auto",
                "status": "failed",
                "error": "ValueError: boom",
            },
        ],
    )
    res = CliRunner().invoke(
        app,
        [
            "plan",
            "--policy",
            str(_policy_file(tmp_path)),
            "--metrics",
            "data/demo/metrics.csv.gz",
            "--json",
        ],
    )
    assert res.exit_code == 1
    out = json.loads(res.stdout[res.stdout.index("[") :])
    assert [(r["queue"], r["status"]) for r in out] == [
        ("emails", "proposed"),
        ("thumbs", "failed"),
    ]
    assert out[1]["error"] == "ValueError: boom"


def test_planned_and_skipped_queues_exit_0(tmp_path, monkeypatch):
    _run_returning(
        monkeypatch,
        [
            {"queue": "emails", "policy": "emails", "mode": "manual", "status": "proposed"},
            {
                "queue": "old",
                "policy": "old",
                "mode": "manual",
                "status": "skipped",
                "skipped_reason": "data quality: freshness",
            },
        ],
    )
    res = CliRunner().invoke(
        app,
        ["plan", "--policy", str(_policy_file(tmp_path)), "--metrics", "data/demo/metrics.csv.gz"],
    )
    assert res.exit_code == 0, res.output
