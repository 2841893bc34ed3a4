"""A private PostgreSQL cluster archiving its WAL into a private pgBackRest repository.

The backup tests (``capplanbackup``, port 5441) and the restore drill (``capplandr``, port
5442) each destroy and restore a cluster of their own, never the shared one (5432) nor the
restart tests' (``capplanfaults``, 5439). The cluster is made once with ``pg_createcluster``
(trust auth on local TCP) and reused; each use starts from a fresh repository (the stanza is
created again), configured by :func:`capplan_adapters.pgbackrest.setup` from the templates in
``deployments/backup/`` exactly as ``capplan db backup-setup`` does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from capplan_adapters.pgbackrest import Cluster, Repo, restore, setup, switch_wal

PG_VERSION = sorted(os.listdir("/etc/postgresql"))[-1] if os.path.isdir("/etc/postgresql") else "15"
BASE = Path("/var/tmp/capplan-backup")


class ClusterUnavailable(RuntimeError):
    """The private cluster could not be made or started (the message says why)."""


@dataclass
class ArchivedCluster:
    name: str
    port: int
    stanza: str = "capplan"
    archive_timeout_s: int = 30
    base: Path = field(init=False)

    def __post_init__(self) -> None:
        self.base = BASE / self.name

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def repo(self) -> Repo:
        return Repo(
            self.stanza,
            self.base / "pgbackrest.conf",
            self.base / "repo",
            self.base / "log",
            self.base / "lock",
            self.archive_timeout_s,
        )

    @property
    def cluster(self) -> Cluster:
        return Cluster.find(f"{PG_VERSION}/{self.name}")

    def env(self) -> dict[str, str]:
        """``CAPPLAN_BACKUP_*`` for ``capplan db backup|restore|verify``."""
        r = self.repo
        return {
            "CAPPLAN_BACKUP_CLUSTER": f"{PG_VERSION}/{self.name}",
            "CAPPLAN_BACKUP_STANZA": self.stanza,
            "CAPPLAN_BACKUP_CONFIG": str(r.config),
            "CAPPLAN_BACKUP_REPO_PATH": str(r.repo_path),
            "CAPPLAN_BACKUP_LOG_PATH": str(r.log_path),
            "CAPPLAN_BACKUP_LOCK_PATH": str(r.lock_path),
            "CAPPLAN_BACKUP_ARCHIVE_TIMEOUT_S": str(self.archive_timeout_s),
        }

    # -- making it ready ---------------------------------------------------------------------
    def ensure(self, *, fresh_repo: bool = True, remake: bool = True) -> dict[str, Any]:
        """Create (once) and start the cluster, and archive its WAL into a fresh repository.
        Returns :func:`setup`'s report."""
        if shutil.which("pg_createcluster") is None or shutil.which("pgbackrest") is None:
            raise ClusterUnavailable(
                "pg_createcluster and pgbackrest are needed (bin/services installs pgbackrest)"
            )
        listed = _run("pg_lsclusters", "-h").stdout
        if not any(line.split()[:2] == [PG_VERSION, self.name] for line in listed.splitlines()):
            made = _run(
                "pg_createcluster",
                PG_VERSION,
                self.name,
                "--port",
                str(self.port),
                "--",
                "--auth-local=trust",
                "--auth-host=trust",
            )
            if made.returncode != 0:
                raise ClusterUnavailable(f"pg_createcluster failed: {made.stderr}")
        cluster = self.cluster
        if not cluster.accepts_connections():
            started = _run("pg_ctlcluster", PG_VERSION, self.name, "start")
            if started.returncode != 0:
                if not remake:
                    raise ClusterUnavailable(f"cannot start {self.name}: {started.stderr}")
                # an earlier run destroyed its data and did not restore it: the cluster is
                # this module's own, so it is made again
                _run("pg_dropcluster", PG_VERSION, self.name, "--stop")
                return self.ensure(fresh_repo=fresh_repo, remake=False)
        if fresh_repo and self.base.exists():
            shutil.rmtree(self.base / "repo", ignore_errors=True)
        return setup(cluster, self.repo)

    # -- the disaster and the way back ----------------------------------------------------------
    def destroy_data_dir(self) -> datetime:
        """The machine loses its database disk: every PostgreSQL process of the cluster is
        SIGKILLed and its data directory deleted. Returns when (UTC) the data was gone."""
        from datetime import UTC

        data = self.cluster.data_dir
        pid_file = data / "postmaster.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().split()[0])
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            for child in _children(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGKILL)
        gone = datetime.now(UTC)
        shutil.rmtree(data, ignore_errors=True)
        deadline = time.monotonic() + 30
        while _listens(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)
        return gone

    def restore(self, to: datetime | None) -> dict[str, Any]:
        return restore(self.cluster, self.repo, to)

    def switch_wal(self) -> None:
        switch_wal(self.cluster)

    def wait_archived(self, timeout_s: float = 60, *, switch: bool = True) -> None:
        """Until the segment current now has been archived (a restore reaches this point).
        ``switch``: close it now; else wait for ``archive_timeout`` to close it."""
        cluster = self.cluster
        wanted = cluster.sql("SELECT pg_walfile_name(pg_current_wal_lsn())")
        if switch:
            switch_wal(cluster)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            last = cluster.sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")
            if last and last[:24] >= wanted:
                return
            time.sleep(0.2)
        raise TimeoutError(f"WAL segment {wanted} not archived within {timeout_s} s")


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=False)


def _children(pid: int) -> list[int]:
    out = _run("pgrep", "-P", str(pid)).stdout.split()
    return [int(p) for p in out]


def _listens(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0
