"""The restore drill's short version, as CI runs it (issue 25): bench/dr_drill.py --short.

The loop (its flows called from the drill's process; the deployed run is docs/operations.md's)
runs on a private PostgreSQL cluster (``capplandr``, 5442) archiving into pgBackRest; a base
backup is taken; once a plan waits for approval and its WAL is archived, the cluster's data
directory is destroyed; ``capplan db restore --latest`` brings it back, the Prefect server is
restarted and the runs the restore left in flight are crashed; the loop plans again. The
whole stack is private to the test (its own cluster, Redis and Prefect server, on ports of its
own), and its bounds (RTO 600 s, RPO 60 s, nothing twice) do not depend on the CPU it gets, so
it runs beside the other tests, not in the serial phase.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[3]


def test_the_short_restore_drill_meets_rto_and_rpo_and_applies_nothing_twice(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench/dr_drill.py"),
            "--short",
            "--json",
            "--workdir",
            str(tmp_path / "dr"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    lines = done.stdout.strip().splitlines()
    report = json.loads(lines[-1]) if lines else {}
    # a failed drill prints its error and traceback as its last stdout line; the stderr
    # tail is what Prefect's threads log while the process shuts down
    assert done.returncode == 0, report.get("traceback") or done.stderr[-4000:]
    print(
        json.dumps(
            {
                k: report[k]
                for k in (
                    "rto_s",
                    "rpo_s",
                    "plans_lost",
                    "steps_applied_twice",
                    "approvals_resumable",
                    "approvals_expired",
                    "approvals_waiting_at_loss",
                    "phases_s",
                    "drill_s",
                )
            }
        )
    )
    # the targets: back within 600 s, at most 60 s of history lost
    assert report["rto_s"] is not None and report["rto_s"] <= 600, report["phases_s"]
    assert report["rpo_s"] is not None and 0 <= report["rpo_s"] <= 60, report
    # nothing written twice, whatever the restore forgot
    assert report["steps_applied_twice"] == 0, report["steps"]
    # every plan that waited for a person (its WAL archived before the loss) is resumable,
    # or ended with a reason; the one resumed finished
    looks = report["approvals"]
    assert report["approvals_waiting_at_loss"] >= 1, looks
    after, end = looks["after_restore"], looks["at_end"]
    assert after["lost"] == [] and after["other"] == [], looks
    assert report["approvals_resumable"] + report["approvals_expired"] >= 1, looks
    assert all(e["reason"] for e in end["expired"] + end["cancelled"] + end["superseded"]), looks
    if after["resumable"]:
        resume = report["resume"]
        assert resume["state"] == "Completed", resume
        assert resume["plan_status"] in ("approved", "applied"), resume
    # the restore is in the audit trail, with what it settled
    audit = report["store_restored_audit"]
    assert audit is not None and audit["recovered"] is not None, audit
    assert report["plans_lost"] <= report["plans_before"]
