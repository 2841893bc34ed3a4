"""``capplan metrics import|export``: move metrics between a file and the store.

The store is the one named by ``CAPPLAN_DATABASE_URL`` (see ``capplan_app.settings``). Import is
idempotent on (queue, timestamp) and checks the whole file before writing anything; a bad cell
exits with code 2 and a message naming the row and the column.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from capplan_cli.output import console, fail, print_json

metrics_app = typer.Typer(
    help="Import metrics files into the store, export them back.", no_args_is_help=True
)


def _store() -> Any:
    from sqlalchemy.exc import SQLAlchemyError

    from capplan_app.bootstrap import plan_store

    try:
        return plan_store()
    except SQLAlchemyError as err:
        fail(f"cannot open the store: {type(err).__name__}: {str(err).splitlines()[0]}", code=1)


def _parse_since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        fail(f"--since {text!r} is not an ISO-8601 time (e.g. 2026-11-01T00:00:00Z)")
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@metrics_app.command("import")
def import_cmd(
    file: Path = typer.Argument(..., help="metrics file: .csv, .csv.gz or .parquet"),
    as_json: bool = typer.Option(False, "--json", help="print {written, skipped, queues}"),
) -> None:
    """Write a metrics file into the store; rows already stored are skipped."""
    from sqlalchemy.exc import SQLAlchemyError

    from capplan_core.metrics.schema import MetricsFileError
    from capplan_core.metrics.transfer import import_metrics_file

    store = _store()
    try:
        result = import_metrics_file(store, file)
    except MetricsFileError as err:
        fail(str(err))
    except SQLAlchemyError as err:
        fail(
            f"the store refused the import, nothing was written: {type(err).__name__}: "
            f"{str(err).splitlines()[0]}",
            code=1,
        )
    if as_json:
        print_json(result.to_json())
        return
    console.print(
        f"{file}: {result.written} rows written, {result.skipped} already stored; "
        f"queues: {', '.join(result.queues) or '(none)'}"
    )


@metrics_app.command("export")
def export_cmd(
    file: Path = typer.Argument(..., help="output file: .csv, .csv.gz or .parquet"),
    queue: str = typer.Option(..., "--queue", help="the queue to export"),
    since: str | None = typer.Option(None, "--since", help="ISO-8601 start (UTC if naive)"),
) -> None:
    """Write one queue's stored metrics to a file in the metrics-file format."""
    from capplan_core.metrics.schema import MetricsFileError
    from capplan_core.metrics.transfer import export_frame, write_metrics_frame

    start = _parse_since(since)
    if not file.name.lower().endswith((".csv", ".csv.gz", ".parquet")):
        fail(f"{file}: unknown format (use .csv, .csv.gz, .parquet)")
    frame = export_frame(_store(), queue, since=start)
    if frame.empty:
        fail(
            f"no metrics collected for queue {queue!r}"
            + (f" since {start.isoformat()}" if start else ""),
            code=1,
        )
    try:
        n = write_metrics_frame(frame, file)
    except (MetricsFileError, OSError) as err:
        fail(str(err), code=1)
    console.print(f"{file}: {n} rows of queue {queue!r}")


def register(app: typer.Typer) -> None:
    app.add_typer(metrics_app, name="metrics")
