"""An apply-due process killed (SIGKILL, by itself at a hook point) after the claim, between
the intent and the write, and between the write and the outcome: the next run takes the step
over once its lease has run out, reads the live count back, and finishes — never writing
twice, leaving a complete audit. On PostgreSQL, repeated; the figures go to
docs/reliability.md. One case goes through the real ``capplan plans apply-due`` CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from exec_harness import (
    LEASE_S,
    NAMESPACE,
    Tally,
    check_history,
    make_plan,
    run_due,
)

from capplan_core.planning.stored_plan import StepStatus

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPETITIONS = 10
MOVES = [(3, 5), (5, 8)]
REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("point", ["claimed", "applying", "written"])
def test_a_killed_run_is_recovered_by_the_next_without_a_double_write(
    store, double, pg_url, forker, tmp_path, point
) -> None:
    tally = Tally(f"SIGKILL after '{point}', next run recovers")
    for rep in range(REPETITIONS):
        name = f"kill-{point}-{rep}"
        pid = make_plan(store, double, name, MOVES)
        out = str(tmp_path / f"{name}.json")
        assert forker.run([(pg_url, double.url, f"{name}-dead", point, out)]) == [-9]
        first = store.get_plan(pid).steps[0]
        landed = point == "written"
        assert first.status == (StepStatus.CLAIMED if point == "claimed" else StepStatus.APPLYING)
        assert len(double.changes_of(NAMESPACE, name)) == int(landed)
        time.sleep(LEASE_S + 0.1)  # the dead run's leases run out
        results = run_due(store, double.url, f"{name}-next")
        statuses = check_history(store, double, pid, name, tally, expect_applied=2)
        assert statuses == [StepStatus.APPLIED, StepStatus.APPLIED], results
        took_over = store.audit_events(plan_id=pid, action="step_taken_over")
        assert [e.details["previous_run"] for e in took_over] == [f"{name}-dead"]
        applied = store.audit_events(plan_id=pid, action="step_applied")[0].details
        assert applied.get("recovered", False) is landed
        assert double.replicas(NAMESPACE, name) == 8
    row = tally.record()
    assert (row["double_applied"], row["lost"], row["audit_gaps"]) == (0, 0, 0)
    assert row["cluster_writes"] == 2 * REPETITIONS


def test_the_cli_killed_between_write_and_mark_is_finished_by_the_next_cli_run(
    store, double, pg_url, tmp_path
) -> None:
    name = "kill-cli"
    pid = make_plan(store, double, name, [(2, 4)])
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "double",
                "clusters": [{"name": "double", "cluster": {"server": double.url}}],
                "users": [{"name": "capplan", "user": {"token": "t"}}],
                "contexts": [
                    {"name": "double", "context": {"cluster": "double", "user": "capplan"}}
                ],
            }
        )
    )
    env = {
        **os.environ,
        "CAPPLAN_DATABASE_URL": pg_url,
        "CAPPLAN_SCALER": "kubernetes",
        "CAPPLAN_KUBECONFIG": str(kubeconfig),
        "CAPPLAN_DATA_DIR": str(tmp_path),
    }
    cmd = [
        sys.executable,
        "-m",
        "capplan_cli.main",
        "plans",
        "apply-due",
        "--json",
        "--lease-seconds",
        "1",
    ]
    dead = subprocess.run(
        cmd,
        env={**env, "CAPPLAN_FAULT_KILL_AT": "written"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert dead.returncode == -9, dead.stderr
    assert store.get_plan(pid).steps[0].status == StepStatus.APPLYING
    assert len(double.changes_of(NAMESPACE, name)) == 1
    time.sleep(1.1)
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = [r for r in json.loads(done.stdout) if r["plan_id"] == pid]
    assert [(r["outcome"], set(r)) for r in rows] == [
        ("applied", {"plan_id", "step_id", "outcome", "reason"})
    ]
    assert "not written again" in rows[0]["reason"]
    assert len(double.changes_of(NAMESPACE, name)) == 1
    assert store.get_plan(pid).steps[0].status == StepStatus.APPLIED
