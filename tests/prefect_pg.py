"""A real Prefect server whose database is PostgreSQL: the production set-up, for tests and
the scale benchmark.

``prefect server start`` runs as a subprocess with its own ``PREFECT_HOME`` and
``PREFECT_API_DATABASE_CONNECTION_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/<scratch>``
(a fresh database on the local PostgreSQL, trust auth, dropped afterwards). Prefect creates
its schema on start. :func:`prefect_on_postgres` yields the API URL with the client settings
pointed at it (and back afterwards).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.service_helpers import free_port, scratch_database

PG_ADMIN_URL = os.environ.get("CAPPLAN_TEST_PG",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
# Prefect's own client retries (429, 502 and 503 are always retried; 5 times by default)
CLIENT_SETTINGS = {"PREFECT_CLIENT_MAX_RETRIES": "8"}


def asyncpg_url(sqlalchemy_url: str) -> str:
    """The same database for Prefect's async driver."""
    return "postgresql+asyncpg://" + sqlalchemy_url.split("://", 1)[1]


class PrefectOnPostgres:
    """``prefect server start`` on a PostgreSQL database; ``start()`` waits until healthy."""

    def __init__(self, home: Path, database_url: str, *, workers: int = 1) -> None:
        self.home = home
        self.database_url = asyncpg_url(database_url)
        self.port = free_port()
        self.workers = workers
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self, timeout_s: float = 180) -> float:
        """Start the server; seconds until ``/api/health`` answered."""
        self.home.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        env = {**os.environ, "PREFECT_HOME": str(self.home),
               "PREFECT_API_DATABASE_CONNECTION_URL": self.database_url,
               "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false",
               "PREFECT_SERVER_UI_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING"}
        env.pop("PREFECT_API_URL", None)
        log = (self.home / "server.log").open("ab")
        prefect = Path(sys.executable).with_name("prefect")
        self.proc = subprocess.Popen(
            [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", str(self.workers), "--no-ui"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prefect server exited: see {self.home / 'server.log'}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return time.monotonic() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"prefect server not healthy within {timeout_s:.0f} s: "
                           f"see {self.home / 'server.log'}")

    def stop(self) -> None:
        if self.proc is not None:
            os.killpg(self.proc.pid, 15)  # its own session: the server and its workers
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(timeout=30)
            self.proc = None


@contextmanager
def prefect_on_postgres(home: Path, *, admin_url: str = PG_ADMIN_URL,
                        workers: int = 1) -> Iterator[PrefectOnPostgres]:
    """A Prefect server on a scratch PostgreSQL database, with this process's Prefect client
    pointed at it (``PREFECT_API_URL``) while the context lasts."""
    from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    with scratch_database(admin_url, "prefect_server") as db_url:
        server = PrefectOnPostgres(home, db_url, workers=workers)
        server.start()
        try:
            with temporary_settings(updates={
                    PREFECT_API_URL: server.api_url,
                    PREFECT_CLIENT_MAX_RETRIES: int(CLIENT_SETTINGS[
                        "PREFECT_CLIENT_MAX_RETRIES"])}):
                yield server
        finally:
            server.stop()
