"""``capplan demo`` finishes on its own, and without Prefect's import-deadlock noise.

The demo runs the flow in a worker thread while the main thread waits for the paused plan
through the Prefect client. Both threads importing Prefect for the first time at once used to
deadlock on Python's module locks, which Prefect printed as "Failed to initialize plugins:
deadlock detected by _ModuleLock('prefect.client.orchestration')".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
NOISE = "Failed to initialize plugins"

# the demo's two threads, with the main thread's first Prefect import at several delays
RACE = """
import sys, threading, time
from capplan_cli.demo import start_worker
delay = float(sys.argv[1])
def run():
    import flows.capacity_plan  # noqa: F401
worker = start_worker(run)
time.sleep(delay)
from prefect.client.orchestration import get_client  # noqa: F401
worker.join()
print("imports done")
"""


@pytest.mark.parametrize("delay_s", [0.05, 0.3, 0.8])
def test_worker_and_main_thread_import_prefect_without_deadlock(delay_s: float) -> None:
    res = subprocess.run([sys.executable, "-c", RACE, str(delay_s)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "imports done" in res.stdout
    assert NOISE not in res.stdout + res.stderr
    assert "deadlock" not in res.stdout + res.stderr


def test_demo_finishes_and_approves_the_manual_plan_without_noise(tmp_path: Path) -> None:
    # the user's own store and scaler, which the demo must leave alone (issue 21)
    user_store = tmp_path / "mine.db"
    env = {**os.environ, "CAPPLAN_DATA_DIR": str(tmp_path),
           "CAPPLAN_DATABASE_URL": f"sqlite:///{user_store}", "CAPPLAN_SCALER": "supervisor",
           "PREFECT_HOME": str(tmp_path / "prefect")}
    env.pop("PREFECT_API_URL", None)
    res = subprocess.run([str(Path(sys.executable).parent / "capplan"), "demo", "--json"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert NOISE not in res.stdout + res.stderr
    start = res.stdout.index("[\n")
    results = {r["queue"]: r for r in json.loads(res.stdout[start:res.stdout.rindex("]") + 1])}
    assert results["emails"]["status"] == "approved"
    assert results["emails"]["decision"]["by"] == "demo-user"
    assert results["reports"]["status"] == "proposed"      # advisory: never executed
    assert results["legacy-sync"]["status"] == "skipped"   # stale data
    # the demo wrote into a store of its own, said where, and never opened the user's
    demo_store = tmp_path / "demo" / "capplan.db"
    assert demo_store.exists()
    assert f"sqlite:///{demo_store}" in res.stdout.replace("\n", "")
    assert not user_store.exists()
    from capplan_core.store.db import open_store

    demo_plans = open_store(f"sqlite:///{demo_store}").list_plans(queue="emails")
    assert [p.id for p in demo_plans][:1] == [results["emails"]["id"]]
