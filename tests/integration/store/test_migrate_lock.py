"""Migrations under a PostgreSQL advisory lock, ``capplan db upgrade``, CAPPLAN_MIGRATE_ON_START,
and migration 0003 on a database that already holds duplicates (issue 12, point 8)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text
from typer.testing import CliRunner

from capplan_adapters.store.db import alembic_config, migrate, open_store, schema_revisions
from capplan_core.planning.errors import SchemaBehind
from tests.conftest import PG_ADMIN_URL, require_service
from tests.service_helpers import scratch_database

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def empty_pg_url() -> Iterator[str]:
    """A new, empty PostgreSQL database (dropped after the test)."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    with scratch_database(PG_ADMIN_URL, "capplan_mig") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'capplan.db'}"
    return str(request.getfixturevalue("empty_pg_url"))


def empty_pg_url_go_file() -> Path:
    return Path(tempfile.mkdtemp(prefix="capplan-migrate-")) / "go"


def test_processes_migrating_an_empty_database_at_once_all_succeed(empty_pg_url: str) -> None:
    n = 6
    # every process imports first and says so; then all start migrating at the same instant
    # (when the go-file appears), so the race is between migrations, not imports
    go = empty_pg_url_go_file()
    code = (
        "import os, sys, time; from capplan_adapters.store.db import migrate; "
        "print('ready', flush=True)\n"
        "while not os.path.exists(sys.argv[2]): time.sleep(0.001)\n"
        "migrate(sys.argv[1])"
    )
    started = time.monotonic()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, empty_pg_url, str(go)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    go.touch()
    outcomes = [(p.wait(timeout=300), p.stderr.read() if p.stderr else "") for p in procs]
    elapsed_s = time.monotonic() - started
    assert [rc for rc, _ in outcomes] == [0] * n, [err[-800:] for _, err in outcomes]
    current, head = schema_revisions(empty_pg_url)
    assert current == head
    eng = create_engine(empty_pg_url)
    with eng.connect() as c:
        assert c.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
        # the lock is released: nobody holds an advisory lock any more
        assert (
            c.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")).scalar()
            == 0
        )
    assert "uq_plan_live_per_queue" in {
        i["name"] for i in inspect(eng).get_indexes("capacity_plan")
    }
    eng.dispose()
    print(f"{n} processes migrated one empty database in {elapsed_s:.1f} s")


def test_without_migrate_on_start_a_schema_behind_is_refused_until_db_upgrade(
    empty_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from capplan_app.settings import get_settings
    from capplan_cli.main import app

    open_store.cache_clear()
    head = schema_revisions(empty_url)[1]
    with pytest.raises(SchemaBehind, match="run `capplan db upgrade`"):
        open_store(empty_url, False)
    monkeypatch.setenv("CAPPLAN_DATABASE_URL", empty_url)
    monkeypatch.setenv("CAPPLAN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CAPPLAN_MIGRATE_ON_START", "false")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        listed = runner.invoke(app, ["plans", "list"])
        assert listed.exit_code != 0 and "capplan db upgrade" in str(listed.exception)
        behind = runner.invoke(app, ["db", "current", "--json"])
        assert behind.exit_code == 0 and '"up_to_date": false' in behind.output
        up = runner.invoke(app, ["db", "upgrade"])
        assert up.exit_code == 0, up.output
        assert f"schema upgraded: empty -> {head}" in up.output
        again = runner.invoke(app, ["db", "upgrade"])
        assert f"already at {head}" in again.output
        open_store.cache_clear()
        assert runner.invoke(app, ["plans", "list", "--json"]).exit_code == 0
    finally:
        get_settings.cache_clear()
        open_store.cache_clear()


def test_migration_0003_keeps_the_newest_live_plan_and_run_key(empty_url: str) -> None:
    command.upgrade(alembic_config(empty_url), "0002")
    eng = create_engine(empty_url)
    now = datetime.now(UTC)
    with eng.begin() as c:
        c.execute(
            text(
                "INSERT INTO scaling_policy (id, name, enabled, mode, queue, target, "
                "slo_targets, scaling_constraints, spec, created_at, updated_at) VALUES "
                "(1, 'p', true, 'manual', 'q', '{}', '{}', '{}', '{}', :t, :t)"
            ),
            {"t": now},
        )
        for pid, status, run in [
            (1, "applied", "r1"),
            (2, "approved", "r1"),
            (3, "approved", "r2"),
            (4, "proposed", None),
        ]:
            c.execute(
                text(
                    "INSERT INTO capacity_plan (id, policy_id, queue, status, mode, "
                    "created_at, flow_run_id, details) VALUES (:i, 1, 'q', :s, "
                    "'manual', :t, :r, '{}')"
                ),
                {"i": pid, "s": status, "t": now, "r": run},
            )
    migrate(empty_url)
    with eng.connect() as c:
        rows = c.execute(
            text("SELECT id, status, flow_run_id FROM capacity_plan ORDER BY id")
        ).all()
        audit = c.execute(text("SELECT action, plan_id FROM audit_event ORDER BY id")).all()
    eng.dispose()
    assert [tuple(r) for r in rows] == [
        (1, "superseded", None),
        (2, "superseded", "r1"),
        (3, "approved", "r2"),
        (4, "proposed", None),
    ]
    assert sorted(tuple(a) for a in audit) == [
        ("orphan_plan", 1),
        ("superseded", 1),
        ("superseded", 2),
    ]
