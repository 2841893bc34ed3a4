"""Private services the restart fault tests may restart without hurting anyone else.

The shared PostgreSQL (5432) and Redis (6379) serve other tests and engineers, so these tests
restart their own: a dedicated PostgreSQL cluster ``capplanfaults`` on port 5439 (created once,
reused after, trust auth on local TCP), a ``redis-server`` without persistence on a free port,
and a Prefect server subprocess with its own ``PREFECT_HOME`` (SQLite).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service_helpers import PrefectServerProcess, free_port, scratch_database

PG_VERSION = sorted(os.listdir("/etc/postgresql"))[-1] if os.path.isdir("/etc/postgresql") else "15"
PG_CLUSTER = "capplanfaults"
PG_PORT = 5439
PG_ADMIN = f"postgresql+psycopg://postgres@127.0.0.1:{PG_PORT}/postgres"


def wait_port(port: int, *, up: bool = True, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if (s.connect_ex(("127.0.0.1", port)) == 0) == up:
                return
        time.sleep(0.1)
    raise TimeoutError(f"port {port} not {'up' if up else 'down'} within {timeout_s:.0f} s")


# -- PostgreSQL ------------------------------------------------------------------------------
def _pg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=False)


def ensure_pg_cluster() -> None:
    """Create (once) and start the private cluster; idempotent."""
    if shutil.which("pg_createcluster") is None:
        pytest.fail(
            "pg_createcluster is missing: the restart tests need PostgreSQL's "
            "postgresql-common tools",
            pytrace=False,
        )
    listed = _pg("pg_lsclusters", "-h").stdout
    if not any(line.split()[:2] == [PG_VERSION, PG_CLUSTER] for line in listed.splitlines()):
        made = _pg(
            "pg_createcluster",
            PG_VERSION,
            PG_CLUSTER,
            "--port",
            str(PG_PORT),
            "--",
            "--auth-local=trust",
            "--auth-host=trust",
        )
        if made.returncode != 0:
            pytest.fail(f"pg_createcluster failed: {made.stderr}", pytrace=False)
    status = _pg("pg_ctlcluster", PG_VERSION, PG_CLUSTER, "status")
    if status.returncode != 0:
        started = _pg("pg_ctlcluster", PG_VERSION, PG_CLUSTER, "start")
        if started.returncode != 0:
            pytest.fail(f"cannot start cluster {PG_CLUSTER}: {started.stderr}", pytrace=False)
    wait_port(PG_PORT)


def restart_pg() -> float:
    """Restart the private cluster (fast shutdown: sessions are cut); seconds it took."""
    t0 = time.monotonic()
    done = _pg("pg_ctlcluster", PG_VERSION, PG_CLUSTER, "restart", "-m", "fast")
    if done.returncode != 0:
        raise RuntimeError(f"restart failed: {done.stderr}")
    wait_port(PG_PORT)
    return time.monotonic() - t0


@pytest.fixture
def private_pg_url() -> Iterator[str]:
    """A fresh database on the private cluster, dropped after the test."""
    ensure_pg_cluster()
    with scratch_database(PG_ADMIN, "capplan_faults") as url:
        yield url


# -- Redis -----------------------------------------------------------------------------------
class PrivateRedis:
    """``redis-server`` on a free port, no RDB, no AOF: a restart loses everything."""

    def __init__(self) -> None:
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is missing", pytrace=False)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=30)
            self.proc = None
        wait_port(self.port, up=False)


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    r = PrivateRedis()
    r.start()
    yield r
    r.stop()


# -- Prefect server --------------------------------------------------------------------------
class PrefectServer(PrefectServerProcess):
    """A private ``prefect server start`` with its own home and SQLite database, killed with
    SIGKILL (a crash) by ``stop()``, which returns once its port is closed."""

    def __init__(self, home: Path) -> None:
        super().__init__(home, kill_signal=9)

    def stop(self) -> None:
        super().stop()
        wait_port(self.port, up=False)
