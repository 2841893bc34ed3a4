"""``capplan db``: schema migrations for operators who migrate separately.

With ``CAPPLAN_MIGRATE_ON_START=false`` processes never migrate; run ``capplan db upgrade``
once per release (it takes the same PostgreSQL advisory lock as a migrating process).
"""

from __future__ import annotations

import typer

from capplan_cli import db_backup
from capplan_cli.output import console, fail, print_json

db_app = typer.Typer(help="The plan store's schema.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
    db_backup.register(db_app)  # backup, backups, restore, verify, backup-setup (pgBackRest)


def _url() -> str:
    from capplan_app.settings import get_settings

    return get_settings().resolved_database_url()


@db_app.command("upgrade")
def upgrade() -> None:
    """Migrate the plan store (CAPPLAN_DATABASE_URL) to the newest schema."""
    from sqlalchemy.exc import SQLAlchemyError

    from capplan_adapters.store.db import migrate, schema_revisions

    url = _url()
    try:
        before, head = schema_revisions(url)
        migrate(url)
        after, _ = schema_revisions(url)
    except SQLAlchemyError as err:
        fail(f"migration failed: {err}", code=1)
    if before == after:
        console.print(f"schema already at {after} (head)")
    else:
        console.print(f"schema upgraded: {before or 'empty'} -> {after} (head {head})")


@db_app.command("current")
def current(as_json: bool = typer.Option(False, "--json")) -> None:
    """The schema revision of the database and the one this capplan needs."""
    from capplan_adapters.store.db import code_head, database_revision

    now, head = database_revision(_url()), code_head()  # plain SQL: no Alembic to load
    if as_json:
        print_json({"current": now, "head": head, "up_to_date": now == head})
    else:
        console.print(
            f"current {now or 'none'}, head {head}"
            + ("" if now == head else ": run `capplan db upgrade`")
        )


@db_app.command("prune")
def prune(
    dry_run: bool = typer.Option(False, "--dry-run", help="count what would go, delete nothing"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Delete plans, audit rows and metrics past their retention (CAPPLAN_*_RETENTION_DAYS),
    and Prefect's finished flow runs when PREFECT_API_URL is set. Live plans, plans with open
    steps and each queue's newest plan are kept."""
    from datetime import UTC, datetime

    from pydantic import ValidationError
    from sqlalchemy.exc import SQLAlchemyError

    from capplan_app.bootstrap import plan_store
    from capplan_app.prefect_api import configured_api_url
    from capplan_app.settings import get_settings
    from capplan_core.retention import cutoffs

    try:
        limits = get_settings().retention_limits()
    except ValidationError as err:
        fail(
            "settings: "
            + "; ".join(
                (
                    f"CAPPLAN_{str(e['loc'][0]).upper()}: {e['msg']} (got {e['input']!r})"
                    if e["loc"]
                    else e["msg"].removeprefix("Value error, ")
                )
                for e in err.errors()
            )
        )
    cut = cutoffs(datetime.now(UTC), limits)
    try:
        report = plan_store().prune(cut, dry_run=dry_run).as_dict()
    except SQLAlchemyError as err:
        fail(f"prune failed: {err}", code=1)
    if configured_api_url():
        from capplan_app.prefect_retention import prune_flow_runs

        report["flow_runs"] = prune_flow_runs(cut.flow_runs, dry_run=dry_run)
    else:
        report["flow_runs"] = {"skipped": "PREFECT_API_URL is not set (no Prefect server to prune)"}
    if as_json:
        print_json(report)
        return
    verb = "would delete" if dry_run else "deleted"
    counts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in report["pruned"].items())
    console.print(
        f"{verb}: {counts}; kept {report['plans_kept_old']} old plan(s) that are "
        "live, have open steps or are their queue's newest",
        highlight=False,
    )
    runs = report["flow_runs"]
    console.print(
        f"Prefect flow runs: {runs['skipped']}"
        if "skipped" in runs
        else f"Prefect flow runs {verb}: {runs['flow_runs']} (ended before {runs['older_than']})",
        highlight=False,
    )
