"""The deployed loop soaked for a few minutes with every fault (issue 21): bench/soak.py's
short run, as CI runs it. The 60-minute run's figures are in docs/soak.md.

The whole stack is real and private to the test (its own PostgreSQL cluster on 5439, its own
Redis, Prefect server on that PostgreSQL, supervisord with real rq workers, prefect.yaml
deployed onto a process work pool and a real ``prefect worker``), so it runs alone (serial).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.serial]
ROOT = Path(__file__).resolve().parents[3]


def test_a_short_soak_with_every_fault_keeps_time_and_orphans_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench/soak.py"),
            "--minutes",
            "4",
            "--cycle-s",
            "60",
            "--workdir",
            str(tmp_path / "soak"),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps(report, indent=1))
    steps, plans, cycles = report["steps"], report["plans"], report["cycles"]
    # no step applied before its time, after its window, or twice
    assert (steps["early"], steps["late"], steps["duplicated"]) == (0, 0, 0), steps
    # every approved plan was carried out (or closed with a reason): none orphaned
    assert plans["orphaned"] == 0, plans
    # planning went on through every fault, and no cycle started an interval late
    assert cycles["states"].get("Completed", 0) >= 2, cycles
    assert cycles["later_than_one_interval"] == 0, cycles
    assert cycles["lateness_s"]["max"] < 60, cycles
    # each fault was injected and the loop recovered from it
    kinds = [f["fault"] for f in report["faults"]]
    assert kinds == [
        "kill-rq-worker",
        "restart-prefect",
        "restart-postgres",
        "restart-redis",
        "kill-worker",
    ], report["faults"]
    assert all(f.get("recovered_s") is not None for f in report["faults"]), report["faults"]
    # the loop did real work: plans made, and at least one step written to supervisord
    assert sum(plans["by_status"].values()) >= 2 and steps["cluster_writes"] >= 1, report
