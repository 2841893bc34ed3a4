"""``capplan plan`` without ``--metrics`` plans from the stored history at the wall clock.

The demo metrics are written into the store shifted so that they end a minute ago, as if
collect-metrics had been running; one policy names a queue nothing was collected for.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from capplan_app.bootstrap import DEMO_METRICS, plan_store
from capplan_core.metrics.file_source import read_metrics_file
from capplan_core.metrics.transfer import frame_to_store_rows

pytestmark = [pytest.mark.integration]
CAPPLAN = str(Path(sys.executable).parent / "capplan")


def _capplan(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``capplan`` in its own process (Prefect's log handlers keep the streams they first see,
    so in-process CLI runners leak closed streams into later tests), on the test's server."""
    from prefect.settings import PREFECT_API_URL

    full = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value() or ""),
        "PREFECT_LOGGING_LEVEL": "WARNING",
        **env,
    }
    return subprocess.run([CAPPLAN, *args], env=full, capture_output=True, text=True, timeout=600)


def _policies(tmp_path: Path) -> Path:
    common = {
        "mode": "advisory",
        "slo": {"wait_p95_seconds": 10, "drain_seconds": 300},
        "scaling": {"min_workers": 1, "max_workers": 40, "max_step": 8},
        "forecast": {"interval_minutes": 15, "seasonality": ["daily"], "horizon_hours": 2},
        "simulation": {"replications": 40},
    }
    doc = {
        "policies": [
            {
                "name": "thumbs",
                "queue": "thumbnails",
                "target": {"namespace": "w", "name": "thumb"},
                **common,
            },
            {
                "name": "ghost",
                "queue": "never-collected",
                "target": {"namespace": "w", "name": "ghost"},
                **common,
            },
        ]
    }
    path = tmp_path / "policies.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_plan_without_metrics_plans_the_stored_history_at_the_wall_clock(
    prefect_server, capplan_env, tmp_path
):
    frame = read_metrics_file(DEMO_METRICS)
    frame = frame[frame["queue"] == "thumbnails"].copy()
    now = datetime.now(UTC)
    frame["timestamp"] += (now - timedelta(minutes=1)) - frame["timestamp"].max()
    assert plan_store().record_metrics(frame_to_store_rows(frame, source="test")) == len(frame)

    # a preview of the file writes nothing: no policy, no plan, no quality report
    preview = _capplan("plan", "--policy", str(_policies(tmp_path)), "--json")
    assert preview.returncode == 0, preview.stderr[-3000:]
    seen = {r["policy"]: r for r in json.loads(preview.stdout[preview.stdout.index("[") :])}
    assert seen["thumbs"]["status"] == "preview" and seen["thumbs"]["id"] is None
    assert plan_store().list_plans() == [] and plan_store().list_policies() == []

    applied = _capplan("policies", "apply", str(_policies(tmp_path)), "--by", "ops", "--json")
    assert applied.returncode == 0, applied.stderr[-3000:]
    assert [(c["name"], c["version"]) for c in json.loads(applied.stdout)] == [
        ("thumbs", 1),
        ("ghost", 1),
    ]
    res = _capplan("plan", "--save", "--json")
    assert res.returncode == 0, res.stderr[-3000:]
    out = {r["policy"]: r for r in json.loads(res.stdout[res.stdout.index("[") :])}

    thumbs = out["thumbs"]
    assert thumbs["policy_version"] == 1
    assert thumbs["status"] == "proposed", thumbs
    as_of = datetime.fromisoformat(thumbs["as_of"])
    assert abs((as_of - now).total_seconds()) < 120  # now is now, not the data's end
    assert all(datetime.fromisoformat(s["execute_at"]) >= as_of for s in thumbs["steps"])
    # no scaler write yet (dry run): the plan starts from the measured workers
    state = plan_store().get_plan(thumbs["id"]).details["state"]
    assert state["replica_source"] == "measured (dry run, nothing written yet)"
    assert thumbs["current_workers"] == state["measured_workers"] == state["current_workers"]
    assert state["measured_workers"] in set(frame["workers"].iloc[-30:].round().astype(int))
    assert state["workers_differ"] is False

    ghost = out["ghost"]
    assert ghost["status"] == "skipped"
    assert ghost["skipped_reason"].startswith(
        "no metrics collected for queue never-collected since "
    )
    since = datetime.fromisoformat(ghost["skipped_reason"].rsplit(" since ", 1)[1])
    assert timedelta(days=6, hours=23) < now - since < timedelta(days=7, minutes=5)


def test_plan_without_a_policy_file_or_stored_policies_exits_2(capplan_env, tmp_path):
    res = _capplan("plan", "--json")
    assert res.returncode == 2
    assert "no policy is stored" in " ".join(res.stderr.split())
    # --save never stores a file's policies behind the operator's back
    res = _capplan("plan", "--policy", str(_policies(tmp_path)), "--save")
    assert res.returncode == 2 and "capplan policies apply" in " ".join(res.stderr.split())


def test_unreachable_store_fails_the_cycle_clearly_and_plans_nothing(
    prefect_server, capplan_env, tmp_path
):
    res = _capplan(
        "plan",
        "--policy",
        str(_policies(tmp_path)),
        "--json",
        CAPPLAN_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:1/nowhere",
    )
    assert res.returncode == 1, res.stderr[-3000:]
    said = " ".join(res.stderr.split())  # rich wraps long lines
    assert "the plan store is unreachable (OperationalError)" in said
    assert "Connection refused; nothing was planned" in said
    assert "[" not in res.stdout  # no plan JSON printed
