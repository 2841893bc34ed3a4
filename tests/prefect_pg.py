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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.service_helpers import PrefectServerProcess, rebind_prefect_workers, scratch_database

PG_ADMIN_URL = os.environ.get(
    "CAPPLAN_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
# Prefect's own client retries (429, 502 and 503 are always retried; 5 times by default)
CLIENT_SETTINGS = {"PREFECT_CLIENT_MAX_RETRIES": "8"}


def asyncpg_url(sqlalchemy_url: str) -> str:
    """The same database for Prefect's async driver."""
    return "postgresql+asyncpg://" + sqlalchemy_url.split("://", 1)[1]


class PrefectOnPostgres(PrefectServerProcess):
    """``prefect server start`` on a PostgreSQL database; ``start()`` waits until healthy."""

    def __init__(self, home: Path, database_url: str, *, workers: int = 1) -> None:
        self.database_url = asyncpg_url(database_url)
        super().__init__(
            home,
            env={
                "PREFECT_API_DATABASE_CONNECTION_URL": self.database_url,
                "PREFECT_SERVER_UI_ENABLED": "false",
                "PREFECT_LOGGING_LEVEL": "WARNING",
            },
            args=("--workers", str(workers), "--no-ui"),
        )


@contextmanager
def prefect_on_postgres(
    home: Path, *, admin_url: str = PG_ADMIN_URL, workers: int = 1
) -> Iterator[PrefectOnPostgres]:
    """A Prefect server on a scratch PostgreSQL database, with this process's Prefect client
    pointed at it (``PREFECT_API_URL``), and its event and log workers bound to it, while the
    context lasts."""
    from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    with scratch_database(admin_url, "prefect_server") as db_url:
        server = PrefectOnPostgres(home, db_url, workers=workers)
        server.start()
        try:
            with temporary_settings(
                updates={
                    PREFECT_API_URL: server.api_url,
                    PREFECT_CLIENT_MAX_RETRIES: int(CLIENT_SETTINGS["PREFECT_CLIENT_MAX_RETRIES"]),
                }
            ):
                rebind_prefect_workers()
                try:
                    yield server
                finally:
                    rebind_prefect_workers()  # deliver to this server before it stops
        finally:
            server.stop()
