"""``capplan db backup`` / ``restore --to TIME`` / ``verify --scratch`` on a real cluster
(issue 25): a base backup, more plans written after it, a restore to a moment between them
(point-in-time recovery from the archived WAL), the restore audited in the store, and the
backup proven usable by pgBackRest's verify and by a restore into a scratch cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from capplan_adapters.store.db import open_store
from capplan_core.recovery import RECOVERED_ACTION, RESTORED_ACTION
from tests.backup_cluster import ArchivedCluster
from tests.integration.store.plan_seed import POLICY, emails_draft

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[3]


def capplan(*args: str, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "capplan_cli.main", *args, "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=ROOT,
        timeout=600,
    )
    assert done.returncode == 0, (args, done.stdout[-3000:], done.stderr[-3000:])
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_backup_then_restore_to_a_time_keeps_what_was_committed_by_then_and_audits_it(
    archived: ArchivedCluster, backup_store_url: str, tmp_path: Path
) -> None:
    env = {
        **archived.env(),
        "CAPPLAN_DATABASE_URL": backup_store_url,
        "CAPPLAN_DATA_DIR": str(tmp_path / "data"),
    }
    open_store.cache_clear()
    store = open_store(backup_store_url)
    store.apply_policies([POLICY], actor="test")
    before = store.create_plan(emails_draft("run-before-backup"))

    taken = capplan("db", "backup", "--type", "full", env=env)
    assert taken["type"] == "full" and taken["size_bytes"] > 0, taken
    listed = capplan("db", "backups", env=env)
    assert [b["label"] for b in listed] == [taken["label"]]

    kept = store.create_plan(emails_draft("run-after-backup"))  # only in the archived WAL
    time.sleep(1.0)
    target = store.now()  # restore to this moment
    time.sleep(1.0)
    lost = store.create_plan(emails_draft("run-after-target"))
    archived.wait_archived()
    open_store.cache_clear()

    t0 = time.monotonic()
    with RecoveryWatch(archived.port) as watch:
        done = capplan("db", "restore", "--to", target.isoformat(), "--yes", env=env)
    restore_s = time.monotonic() - t0
    print(f"\nrestore to {target.isoformat()}: {restore_s:.1f} s {json.dumps(done)} {watch}")
    # no client reads the half-replayed database: while recovery replays the WAL, a still-
    # running Prefect server or capplan would find rows missing that come back a moment later
    # (a run "not found" mid-restore failed an approval in the restore drill)
    assert watch.in_recovery == 0 and watch.answered > 0, watch
    assert done["timeline"] >= 2 and done["target"] == target.isoformat()
    replayed = datetime.fromisoformat(done["replayed_up_to"])
    assert target - timedelta(seconds=5) <= replayed <= target

    store = open_store(backup_store_url)
    ids = {p.id for p in store.list_plans(limit=50)}
    assert {before, kept} <= ids and lost not in ids
    restored = store.audit_events(action=RESTORED_ACTION)
    assert len(restored) == 1, restored
    d = restored[0].details
    assert d["noticed_by"] == "capplan db restore" and d["restore"]["timeline"] == done["timeline"]
    assert d["lineage"].endswith(f":{done['timeline']}")
    assert datetime.fromisoformat(d["newest_kept_at"]) <= target
    assert len(store.audit_events(action=RECOVERED_ACTION)) == 1
    # ids handed out after the restore are past the lost plan's
    assert store.create_plan(emails_draft("run-after-restore")) > lost
    assert done["store"]["restored"] is True

    archived.wait_archived()
    checked = capplan("db", "verify", "--scratch", env=env)
    assert checked["verify"]["ok"], checked
    scratch = checked["scratch"]
    assert scratch["ok"] and scratch["checks"]["store_plans"] == str(len(ids) + 1), checked
    assert scratch["checks"]["store_schema"], checked
    print(f"verify: {json.dumps(checked)}")


def test_restore_refuses_a_naive_or_missing_target(archived: ArchivedCluster) -> None:
    for args, text in (
        (["--to", "2026-12-06T10:00:00", "--yes"], "no time zone"),
        (["--yes"], "exactly one of"),
        (["--to", "2026-12-06T10:00:00+00:00"], "--yes"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "capplan_cli.main", "db", "restore", *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
            env={**os.environ, **archived.env()},
        )
        assert done.returncode == 2 and text in done.stderr + done.stdout, (args, done.stderr)


class RecoveryWatch:
    """Asks the cluster ``pg_is_in_recovery()`` every 20 ms from another thread: how often it
    answered while still replaying (``in_recovery``) and how often as a primary."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.in_recovery = self.answered = self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> RecoveryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _poll(self) -> None:
        import psycopg

        dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres connect_timeout=2"
        while not self._stop.wait(0.02):
            try:
                with psycopg.connect(dsn) as conn:
                    row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            except psycopg.Error:
                self.refused += 1
                continue
            self.answered += 1
            self.in_recovery += bool(row and row[0])

    def __repr__(self) -> str:
        return (
            f"RecoveryWatch(in_recovery={self.in_recovery}, answered={self.answered}, "
            f"refused={self.refused})"
        )
