"""``capplan db``: schema migrations for operators who migrate separately.

With ``CAPPLAN_MIGRATE_ON_START=false`` processes never migrate; run ``capplan db upgrade``
once per release (it takes the same PostgreSQL advisory lock as a migrating process).
"""

from __future__ import annotations

import typer

from capplan_cli.output import console, fail, print_json

db_app = typer.Typer(help="The plan store's schema.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")


def _url() -> str:
    from capplan_app.settings import get_settings

    return get_settings().resolved_database_url()


@db_app.command("upgrade")
def upgrade() -> None:
    """Migrate the plan store (CAPPLAN_DATABASE_URL) to the newest schema."""
    from sqlalchemy.exc import SQLAlchemyError

    from capplan_core.store.db import migrate, schema_revisions

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
    from capplan_core.store.db import schema_revisions

    now, head = schema_revisions(_url())
    if as_json:
        print_json({"current": now, "head": head, "up_to_date": now == head})
    else:
        console.print(f"current {now or 'none'}, head {head}"
                      + ("" if now == head else ": run `capplan db upgrade`"))
