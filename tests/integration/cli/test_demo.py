"""``capplan demo`` finishes on its own, and without Prefect's import-deadlock noise.

The cycle runs in the main thread and finishes without waiting for a person; the manual plan
waits in its own approve-plan run (a thread), which the demo approves through the Prefect API.
"Failed to initialize plugins: deadlock detected by _ModuleLock(...)" is Prefect's message
for two threads importing it at once: it must never appear.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
NOISE = "Failed to initialize plugins"


def test_demo_finishes_and_approves_the_manual_plan_without_noise(tmp_path: Path) -> None:
    # the user's own store and scaler, which the demo must leave alone (issue 21)
    user_store = tmp_path / "mine.db"
    env = {
        **os.environ,
        "CAPPLAN_DATA_DIR": str(tmp_path),
        "CAPPLAN_DATABASE_URL": f"sqlite:///{user_store}",
        "CAPPLAN_SCALER": "supervisor",
        "PREFECT_HOME": str(tmp_path / "prefect"),
    }
    env.pop("PREFECT_API_URL", None)
    res = subprocess.run(
        [str(Path(sys.executable).parent / "capplan"), "demo", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert NOISE not in res.stdout + res.stderr
    start = res.stdout.index("[\n")
    results = {r["queue"]: r for r in json.loads(res.stdout[start : res.stdout.rindex("]") + 1])}
    assert results["emails"]["status"] == "approved"
    assert results["emails"]["decision"]["by"] == "demo-user"
    assert results["reports"]["status"] == "proposed"  # advisory: never executed
    assert results["legacy-sync"]["status"] == "skipped"  # stale data
    # the shared pool: one plan for both queues, each queue's simulated waits (issue 23)
    pool = results["notify-push"]
    assert pool["policy"] == "notifications" and pool["status"] in ("approved", "applied")
    classes = {c["queue"]: c for c in pool["simulation"]["classes"]}
    assert set(classes) == {"notify-push", "notify-digest"}
    assert all("drives it" in s["reason"] for s in pool["steps"]), pool["steps"]
    # the demo wrote into a store of its own, said where, and never opened the user's
    demo_store = tmp_path / "demo" / "capplan.db"
    assert demo_store.exists()
    assert f"sqlite:///{demo_store}" in res.stdout.replace("\n", "")
    assert not user_store.exists()
    from capplan_adapters.store.db import open_store

    demo_plans = open_store(f"sqlite:///{demo_store}").list_plans(queue="emails")
    assert [p.id for p in demo_plans][:1] == [results["emails"]["id"]]
