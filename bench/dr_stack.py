"""The restore drill's stack (bench/dr_drill.py): the soak's deployed loop (bench/soak_stack.py,
reused as is) on a PostgreSQL cluster of the drill's own that archives its WAL into
pgBackRest, and a probe that commits a timestamp every half second (the RPO's yardstick).

The cluster is ``capplandr`` on port 5442 (tests/backup_cluster.py): the drill destroys its
data directory, so it is never the shared cluster (5432) nor the restart tests' (5439).
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bench.soak_stack import Stack
from tests.backup_cluster import ArchivedCluster

DR_CLUSTER = "capplandr"
DR_PORT = 5442


@dataclass
class DrillStack(Stack):
    """The soak's stack, with both databases on the drill's archived cluster."""

    archived: ArchivedCluster = field(default_factory=lambda: ArchivedCluster(DR_CLUSTER, DR_PORT))

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.archived.ensure()
        self.start_on(self.archived.admin_url, "dr")

    def backup_env(self) -> dict[str, str]:
        """The loop's settings plus ``CAPPLAN_BACKUP_*``: what ``capplan db restore`` runs
        with, so it settles in-doubt steps against the live supervisord."""
        return {**self.env(), **self.archived.env()}

    def stop(self) -> None:
        # a drill that failed part-way may leave the cluster destroyed: scratch databases
        # are dropped only from a cluster that answers
        if not self.archived.cluster.accepts_connections():
            self._dbs.pop_all()
        super().stop()


@dataclass
class Probe:
    """Commits ``now()`` into ``dr_probe`` in the store's database every ``every_s``; after a
    restore, the newest surviving row says up to when the database was recovered."""

    url: str
    every_s: float = 0.5
    written: int = 0
    failed: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        from sqlalchemy import create_engine, text

        engine = create_engine(self.url)
        with engine.begin() as c:
            c.execute(
                text(
                    "CREATE TABLE IF NOT EXISTS dr_probe (id bigserial PRIMARY KEY, "
                    "at timestamptz NOT NULL DEFAULT clock_timestamp())"
                )
            )
        engine.dispose()
        self._thread = threading.Thread(target=self._run, daemon=True, name="dr-probe")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        from sqlalchemy import create_engine, text

        engine = create_engine(self.url, pool_pre_ping=True, connect_args={"connect_timeout": 2})
        while not self._stop.wait(self.every_s):
            try:
                with engine.begin() as c:
                    c.execute(text("INSERT INTO dr_probe DEFAULT VALUES"))
                self.written += 1
            except Exception:  # noqa: BLE001 - the database is gone or restoring: next tick
                self.failed += 1
                with contextlib.suppress(Exception):
                    engine.dispose()
        engine.dispose()


def newest_probe(url: str, *, before: datetime) -> datetime | None:
    """The newest probe row the (restored) store holds from before ``before`` (the loss:
    rows written after the restore are not what the restore recovered)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as c:
            value: Any = c.execute(
                text("SELECT max(at) FROM dr_probe WHERE at < :before"), {"before": before}
            ).scalar_one()
            return value  # type: ignore[no-any-return]
    finally:
        engine.dispose()


def wait_until(cond: Any, timeout_s: float, poll_s: float = 1.0) -> float | None:
    """Seconds until ``cond()`` held (exceptions count as not yet), or None on time-out."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        with contextlib.suppress(Exception):
            if cond():
                return time.monotonic() - t0
        time.sleep(poll_s)
    return None
