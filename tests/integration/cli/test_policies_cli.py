"""`capplan policies apply|list|show|history|diff` on the real store: apply validates, shows the
diff and stores a version with who and when; an unchanged file stores nothing; a bad file exits 2
naming the field and stores nothing; the reads give the versions back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from capplan_app.bootstrap import plan_store
from capplan_cli.main import app

pytestmark = pytest.mark.integration

runner = CliRunner()


def _file(tmp_path: Path, max_workers: int, name: str = "p.yaml", **extra) -> Path:
    doc = {
        "policies": [
            {
                "name": "emails",
                "queue": "emails",
                "mode": "manual",
                "target": {"namespace": "workers", "name": "email-worker"},
                "slo": {"wait_p95_seconds": 30},
                "scaling": {"max_workers": max_workers},
                "approval": {"approvers": ["alice"]},
                **extra,
            }
        ]
    }
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc))
    return path


def test_apply_list_show_history_diff(capplan_env: str, tmp_path: Path) -> None:
    first = runner.invoke(
        app,
        ["policies", "apply", str(_file(tmp_path, 40)), "--by", "alice", "--comment", "initial"],
    )
    assert first.exit_code == 0, first.output
    assert "emails (new)" in first.output and "+  max_workers: 40" in first.output
    same = runner.invoke(
        app, ["policies", "apply", str(_file(tmp_path, 40)), "--by", "bob", "--json"]
    )
    assert same.exit_code == 0 and json.loads(same.output)[0]["changed"] is False
    dry = runner.invoke(app, ["policies", "apply", str(_file(tmp_path, 30, "q.yaml")), "--dry-run"])
    assert dry.exit_code == 0 and "-  max_workers: 40" in dry.output
    assert "+  max_workers: 30" in dry.output
    assert plan_store().current_policy("emails").version == 1  # a dry run stores nothing
    second = runner.invoke(
        app, ["policies", "apply", str(_file(tmp_path, 30, "q.yaml")), "--by", "carol", "--json"]
    )
    assert json.loads(second.output)[0] == {
        "name": "emails",
        "version": 2,
        "previous": 1,
        "changed": True,
        "superseded_plans": [],
    }

    listed = json.loads(runner.invoke(app, ["policies", "list", "--json"]).output)
    assert [(r["name"], r["version"], r["applied_by"], r["approvers"]) for r in listed] == [
        ("emails", 2, "carol", "alice")
    ]
    history = json.loads(runner.invoke(app, ["policies", "history", "emails", "--json"]).output)
    assert [(h["version"], h["applied_by"], h["comment"]) for h in history] == [
        (1, "alice", "initial"),
        (2, "carol", ""),
    ]
    shown = json.loads(
        runner.invoke(app, ["policies", "show", "emails", "--version", "1", "--json"]).output
    )
    assert shown["spec"]["scaling"]["max_workers"] == 40 and len(shown["sha256"]) == 64
    diff = runner.invoke(app, ["policies", "diff", "emails"])
    assert "--- emails v1" in diff.output and "+++ emails v2" in diff.output
    assert "+  max_workers: 30" in diff.output
    unknown = runner.invoke(app, ["policies", "show", "nope"])
    assert unknown.exit_code == 1 and "no policy named 'nope'" in unknown.output


def test_a_bad_file_exits_2_naming_the_field_and_stores_nothing(
    capplan_env: str, tmp_path: Path
) -> None:
    runner.invoke(app, ["policies", "apply", str(_file(tmp_path, 40)), "--by", "alice"])
    bad = _file(tmp_path, 40, "bad.yaml", exclude_before="2026-01-01T00:00:00")
    res = runner.invoke(app, ["policies", "apply", str(bad), "--by", "alice"])
    assert res.exit_code == 2 and "exclude_before" in " ".join(res.output.split())
    clash = tmp_path / "clash.yaml"
    clash.write_text(
        yaml.safe_dump(
            {
                "policies": [
                    {
                        "name": "mails2",
                        "queue": "emails",
                        "target": {"namespace": "w", "name": "x"},
                        "slo": {"wait_p95_seconds": 30},
                    }
                ]
            }
        )
    )
    res = runner.invoke(app, ["policies", "apply", str(clash)])
    assert res.exit_code == 2 and "share queue 'emails'" in " ".join(res.output.split())
    assert [v.name for v in plan_store().list_policies()] == ["emails"]
    assert plan_store().current_policy("emails").version == 1
