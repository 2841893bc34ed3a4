"""Engine construction and schema migration (Alembic) for the plan store."""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event

from capplan_core.store.repo import PlanStore

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets foreign keys on and a busy timeout for concurrency."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


# Alembic keeps its migration context in module globals: two threads migrating at once (a flow
# run's thread and the CLI waiting on it, both opening the store first) break each other.
_migrate_lock = threading.Lock()


def migrate(url: str) -> None:
    """Bring the schema at ``url`` to the newest migration (one thread at a time)."""
    with _migrate_lock:
        command.upgrade(alembic_config(url), "head")


@lru_cache(maxsize=8)
def open_store(url: str) -> PlanStore:
    """Migrate (once per process and URL) and return a store over ``url``."""
    migrate(url)
    return PlanStore(make_engine(url))
