"""Engine construction and schema migration (Alembic) for the plan store."""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from capplan_core.planning.errors import SchemaBehind

if TYPE_CHECKING:  # Alembic loads only when a migration is needed (CLI start-up), and the
    # repository (the ORM models) only when a store is opened: `db current` needs neither
    from alembic.config import Config

    from capplan_adapters.store.plan_reads import PlanReader
    from capplan_adapters.store.repo import PlanStore

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_REVISION = re.compile(r"^(down_)?revision\s*=\s*['\"]?([^'\"\s]+)['\"]?", re.MULTILINE)


def code_head() -> str:
    """The newest migration's revision, read from the migration files (without Alembic):
    the one revision no other revision names as its ``down_revision``."""
    revisions: set[str] = set()
    downs: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for down, rev in _REVISION.findall(path.read_text()):
            (downs if down else revisions).add(rev)
    heads = revisions - downs
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


def database_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at (None: not migrated yet), read with plain
    SQL from Alembic's own ``alembic_version`` table."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:  # no such table: an empty database
        return None
    finally:
        engine.dispose()


def make_engine(url: str) -> Engine:
    """An engine for ``url``.

    SQLite gets foreign keys on, WAL, a 30 s busy timeout, and every transaction opened with
    ``BEGIN IMMEDIATE`` (SQLAlchemy's documented pysqlite recipe: the driver's own transaction
    handling off, the BEGIN emitted on the engine's ``begin`` event). A transaction then holds
    the write lock from its first read, so a check-then-write (a plan decided once) is atomic
    without ``FOR UPDATE``, which SQLite ignores; concurrent writers wait, they do not fail.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None  # pysqlite must not BEGIN on its own
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn):  # type: ignore[no-untyped-def]
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True)


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


# Alembic keeps its migration context in module globals: two threads migrating at once (a flow
# run's thread and the CLI waiting on it, both opening the store first) break each other.
_migrate_lock = threading.Lock()
# pg_advisory_lock key for schema migrations (any constant; "capplan" in ASCII, 48 bits)
MIGRATION_LOCK_KEY = 0x636170706C61


def migrate(url: str) -> None:
    """Bring the schema at ``url`` to the newest migration.

    One thread at a time in a process; on PostgreSQL also one process at a time across every
    pod: the upgrade runs under ``pg_advisory_lock`` held on a dedicated connection (released
    after, also on failure), so pods starting together on an empty database do not race. A
    process that waited finds the schema at head and does nothing.
    """
    from alembic import command

    with _migrate_lock:
        if not url.startswith("postgresql"):
            command.upgrade(alembic_config(url), "head")
            return
        lock_engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        try:
            with lock_engine.connect() as conn:
                conn.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")
                try:
                    command.upgrade(alembic_config(url), "head")
                finally:
                    conn.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")
        finally:
            lock_engine.dispose()


def schema_revisions(url: str) -> tuple[str | None, str]:
    """(the database's current revision or None if unmigrated, the code's head revision)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
    return current, str(head)


def check_schema(url: str) -> None:
    """Raise :class:`SchemaBehind` unless the schema at ``url`` is at the newest migration
    (read with plain SQL and the migration files: no Alembic to load)."""
    current, head = database_revision(url), code_head()
    if current != head:
        raise SchemaBehind(
            f"the database schema is at revision {current or 'none (empty database)'}, this "
            f"capplan needs {head}, and CAPPLAN_MIGRATE_ON_START is false: run "
            "`capplan db upgrade` (or set CAPPLAN_MIGRATE_ON_START=true)"
        )


def _at_head(url: str, migrate_on_start: bool) -> None:
    """Migrate the schema at ``url`` to head, or (``migrate_on_start=False``) check that it
    is there (:class:`SchemaBehind` otherwise, naming ``capplan db upgrade``)."""
    if migrate_on_start:
        if database_revision(url) != code_head():  # at head already: no Alembic needed
            migrate(url)
    else:
        check_schema(url)


@lru_cache(maxsize=8)
def open_store(url: str, migrate_on_start: bool = True) -> PlanStore:
    """Migrate (once per process and URL) and return a store over ``url``.

    With ``migrate_on_start=False`` nothing is migrated: the schema must already be at head
    (:class:`SchemaBehind` otherwise, naming ``capplan db upgrade``).
    """
    _at_head(url, migrate_on_start)
    from capplan_adapters.store.repo import PlanStore

    return PlanStore(make_engine(url))


@lru_cache(maxsize=8)
def open_reader(url: str, migrate_on_start: bool = True) -> PlanReader:
    """The read half of :func:`open_store` (plans, audit, current policies) over ``url``,
    without the ORM: for the commands that only read. Migrates or checks the schema alike."""
    _at_head(url, migrate_on_start)
    from capplan_adapters.store.plan_reads import PlanReader

    return PlanReader(make_engine(url))
