"""Shared fixtures: real PostgreSQL, Redis and Prefect server. A missing service fails."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.approvers import TEST_APPROVERS, key_env, key_for
from tests.service_helpers import metrics_redis_url

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MPLBACKEND", "Agg")
# Prefect's own default (5), before capplan_cli.main raises it to 8 for real use: the test
# process outlives the private Prefect servers some tests start and stop, and its log and
# event workers retry batches for a stopped server with exponential backoff, which at 8
# retries kept the session's teardown draining them for minutes
os.environ.setdefault("PREFECT_CLIENT_MAX_RETRIES", "5")
# each test approver's key where an `env:` reference finds it (tests/approvers.py::env_approval;
# the other tests keep the keys in Prefect Secret blocks, as docs/security.md sets it up)
for _name in TEST_APPROVERS:
    os.environ.setdefault(key_env(_name), key_for(_name))

PG_ADMIN_URL = os.environ.get(
    "CAPPLAN_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("CAPPLAN_TEST_REDIS", "redis://127.0.0.1:6379/0")
# bin/test runs two pytest-xdist workers, each test file on one of them (--dist loadfile); the
# collectors' tests read Redis database 7 as a whole (RQ's registries), so each worker gets
# its own: 7 on gw0, 8 on gw1 (tests/service_helpers.py::metrics_redis_url)
os.environ.setdefault("CAPPLAN_CELERY_BROKER", metrics_redis_url())


def _reachable(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex((host, port)) == 0


def require_service(name: str, host: str, port: int) -> None:
    if not _reachable(host, port):
        pytest.fail(
            f"{name} is not reachable at {host}:{port}; start it (bin/services)", pytrace=False
        )


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    from tests.service_helpers import scratch_database

    with scratch_database(PG_ADMIN_URL, "capplan_test") as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'capplan.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'capplan.db'}"
    return fresh_pg_store_url(request.getfixturevalue("pg_url"))


def fresh_pg_store_url(base: str) -> str:
    """The session's PostgreSQL database, migrated, with every table emptied."""
    from sqlalchemy import create_engine, text

    from capplan_adapters.store.db import migrate
    from capplan_adapters.store.models import Base

    migrate(base)
    eng = create_engine(base)
    with eng.begin() as c:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        c.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    eng.dispose()
    return base


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """A real Prefect API server (Prefect's own test harness), for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        from tests.approvers import save_approver_keys

        save_approver_keys()  # each test approver's own key, in its Prefect Secret block
        yield


@pytest.fixture
def capplan_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point capplan's settings at a fresh SQLite store; returns its URL."""
    from capplan_app.settings import get_settings

    url = f"sqlite:///{tmp_path / 'capplan.db'}"
    monkeypatch.setenv("CAPPLAN_DATABASE_URL", url)
    monkeypatch.setenv("CAPPLAN_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()
