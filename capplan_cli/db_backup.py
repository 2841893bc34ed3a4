"""``capplan db backup|backups|restore|verify|backup-setup``: pgBackRest, point in time.

The PostgreSQL cluster holding capplan's store and Prefect's database is backed up whole
(``CAPPLAN_BACKUP_*``, :mod:`capplan_app.backup_settings`); WAL is archived continuously, so
``capplan db restore --to TIME`` can stop at any moment the archive reaches. Run these on
the database's machine, as root or ``postgres``. After a restore the store is checked and
settled at once (:mod:`capplan_adapters.restore_watch`): run it with the loop's ``CAPPLAN_*``
settings, so the in-doubt steps are settled against the live counts. docs/operations.md,
"Backups and restore", is the runbook.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from capplan_cli.output import console, fail, print_json


def register(db_app: typer.Typer) -> None:
    """Add the backup commands to ``capplan db``."""
    db_app.command("backup-setup")(setup_cmd)
    db_app.command("backup")(backup_cmd)
    db_app.command("backups")(backups_cmd)
    db_app.command("restore")(restore_cmd)
    db_app.command("verify")(verify_cmd)
    db_app.command("settle-prefect")(settle_prefect_cmd)


def _target() -> tuple[Any, Any]:
    from capplan_adapters.pgbackrest import BackupError
    from capplan_app.backup_settings import get_backup_settings

    s = get_backup_settings()
    try:
        return s.find_cluster(), s.repo()
    except BackupError as err:
        fail(str(err), code=1)


def _show(data: dict[str, Any], as_json: bool, title: str) -> None:
    if as_json:
        print_json(data)
        return
    console.print(f"[bold]{title}[/]")
    for k, v in data.items():
        console.print(f"  {k}: {v}", highlight=False)


def setup_cmd(as_json: bool = typer.Option(False, "--json")) -> None:
    """Render the stanza's pgBackRest config and the cluster's WAL archiving settings from
    deployments/backup/, restart the cluster, create the stanza and check archiving."""
    from capplan_adapters.pgbackrest import BackupError, setup

    cluster, repo = _target()
    try:
        _show(setup(cluster, repo), as_json, "backups set up")
    except BackupError as err:
        fail(str(err), code=1)


def backup_cmd(
    kind: str = typer.Option("full", "--type", help="full | diff | incr"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Take a base backup of the cluster (WAL is archived continuously besides)."""
    from capplan_adapters.pgbackrest import BackupError, backup

    if kind not in ("full", "diff", "incr"):
        fail(f"--type: {kind!r} is not one of full, diff, incr")
    _, repo = _target()
    try:
        _show(backup(repo, kind).as_dict(), as_json, "backup taken")
    except BackupError as err:
        fail(str(err), code=1)


def backups_cmd(as_json: bool = typer.Option(False, "--json")) -> None:
    """The backups the repository holds, oldest first."""
    from capplan_adapters.pgbackrest import BackupError, backups

    _, repo = _target()
    try:
        rows = [b.as_dict() for b in backups(repo)]
    except BackupError as err:
        fail(str(err), code=1)
    if as_json:
        print_json(rows)
        return
    for b in rows:
        console.print(
            f"{b['label']}  {b['type']:4}  {b['stopped']}  {b['size_bytes']} B "
            f"({b['repo_bytes']} B stored)  WAL {b['wal_start']}..{b['wal_stop']}",
            highlight=False,
        )


def parse_target(to: str | None, latest: bool) -> datetime | None:
    """``--to`` as an aware datetime, or None for ``--latest``; exits 2 on bad input."""
    if (to is None) == (not latest):
        fail("give exactly one of --to TIME (ISO-8601 with a time zone) or --latest")
    if to is None:
        return None
    try:
        when = datetime.fromisoformat(to)
    except ValueError:
        fail(f"--to: {to!r} is not an ISO-8601 time (2026-12-06T19:10:44+00:00)")
    if when.tzinfo is None:
        fail(f"--to: {to!r} has no time zone (add +00:00 for UTC)")
    if when > datetime.now(UTC):
        fail(f"--to: {to!r} is in the future")
    return when


def restore_cmd(
    to: str | None = typer.Option(
        None,
        "--to",
        help="restore to this moment (ISO-8601 with "
        "a time zone): every transaction committed by then",
    ),
    latest: bool = typer.Option(
        False, "--latest", help="restore to the newest moment the archived WAL reaches"
    ),
    yes: bool = typer.Option(False, "--yes", help="replace the cluster's data (required)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Restore the whole cluster (capplan's store and Prefect's database) to a point in
    time, start it, then check and settle the store: the restore is audited, steps that may
    have been applied after that point are settled without a write, and plans whose approval
    deadline passed expire "restored from backup"."""
    from capplan_adapters.pgbackrest import BackupError, restore

    when = parse_target(to, latest)
    if not yes:
        fail("a restore replaces the cluster's data with the backup's: pass --yes")
    cluster, repo = _target()
    try:
        report = restore(cluster, repo, when)
    except BackupError as err:
        fail(f"restore failed: {err}", code=1)
    report["store"] = _settle_store(report)
    _show(report, as_json, "restored")


def _settle_store(report: dict[str, Any]) -> dict[str, Any]:
    from capplan_adapters.restore_watch import check_restore
    from capplan_app import bootstrap
    from capplan_app.settings import get_settings

    settings = get_settings()
    if settings.database_url is None or not settings.resolved_database_url().startswith(
        "postgresql"
    ):
        return {
            "skipped": "CAPPLAN_DATABASE_URL does not name a PostgreSQL store: run any "
            "capplan flow (or this command) with it to settle the store"
        }
    store = bootstrap.plan_store()
    return check_restore(
        store,
        store.engine,
        settings.data_dir,
        bootstrap.step_scaler,
        noticed_by="capplan db restore",
        restore_report=report,
    )


def verify_cmd(
    scratch: bool = typer.Option(
        False,
        "--scratch",
        help="also restore the newest backup "
        "into a scratch cluster and read capplan's tables there",
    ),
    prefect_db: str | None = typer.Option(
        None, "--prefect-db", help="the Prefect database's name, also read in the scratch cluster"
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Is the backup usable? ``pgbackrest verify`` reads every backup file and WAL segment
    back against its checksum; ``--scratch`` restores the newest backup, with the WAL to its
    end, into a private scratch cluster and reads the store there. Exit 1 when either fails."""
    from capplan_adapters.pgbackrest import BackupError, restore_scratch, verify

    cluster, repo = _target()
    out: dict[str, Any] = {"verify": verify(repo)}
    ok = out["verify"]["ok"]
    if scratch:
        checks = _scratch_checks(prefect_db)
        try:
            with tempfile.TemporaryDirectory(prefix="capplan-verify-") as tmp:
                out["scratch"] = restore_scratch(
                    repo, Path(tmp), checks, pg_version=cluster.version
                )
        except BackupError as err:
            out["scratch"] = {"ok": False, "error": str(err)}
            ok = False
    if as_json:
        print_json(out)
    else:
        _show({k: v for k, v in out.items()}, False, "verify")
    if not ok:
        raise typer.Exit(1)


def _scratch_checks(prefect_db: str | None) -> dict[str, str]:
    from sqlalchemy.engine import make_url

    from capplan_app.settings import get_settings

    checks: dict[str, str] = {}
    url = get_settings().resolved_database_url()
    if url.startswith("postgresql"):
        db = make_url(url).database
        checks.update(
            {
                "store_schema": f"{db}: SELECT version_num FROM alembic_version",
                "store_plans": f"{db}: SELECT count(*) FROM capacity_plan",
                "store_newest_audit": f"{db}: SELECT max(at) FROM audit_event",
            }
        )
    if prefect_db:
        checks["prefect_flow_runs"] = f"{prefect_db}: SELECT count(*) FROM flow_run"
    return checks or {"databases": "postgres: SELECT count(*) FROM pg_database"}


def settle_prefect_cmd(
    restored_to: str | None = typer.Option(
        None,
        "--restored-to",
        help="the restore point (ISO-8601 with a time zone); default: "
        "the one the store's newest store_restored audit row names",
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """After Prefect's database was restored (and its servers restarted): mark Crashed the
    flow runs the restore left pending, running or cancelling, so the concurrency slots they
    held are released (else every capacity-plan, apply-due and collect-metrics run is
    cancelled for good). Paused runs waiting for an approval are left alone."""
    from capplan_app.prefect_api import configured_api_url
    from capplan_app.prefect_restore import crash_runs_in_flight

    if not configured_api_url():
        fail("PREFECT_API_URL is not set: point it at the restored Prefect server")
    when = _restore_point() if restored_to is None else parse_target(restored_to, False)
    if when is None:
        fail("--restored-to: give a time")
    crashed = crash_runs_in_flight(when)
    if as_json:
        print_json({"restored_to": when.isoformat(), "crashed": crashed})
    else:
        console.print(
            f"{len(crashed)} flow run(s) in flight at {when.isoformat()} marked Crashed",
            highlight=False,
        )


def _restore_point() -> datetime:
    from capplan_app import bootstrap
    from capplan_core.recovery import RESTORED_ACTION

    events = bootstrap.plan_store().audit_events(action=RESTORED_ACTION)
    restore = (events[-1].details.get("restore") or {}) if events else {}
    raw = restore.get("replayed_up_to") or (
        events[-1].details.get("newest_kept_at") if events else None
    )
    if not raw:
        fail("the store holds no restore to take the restore point from: give --restored-to")
    return datetime.fromisoformat(str(raw).replace(" ", "T", 1))
