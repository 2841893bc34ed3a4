"""``capplan plan``: plan every policy, without approving or executing.

Without ``--metrics`` it plans from the store's history (``queue_metrics``) at the wall clock;
with ``--metrics`` it previews offline from that file (``now`` = the file's end, or
``--as-of``). ``--save`` always plans at the wall clock (a saved plan can be executed), so it
refuses ``--as-of``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import typer
from sqlalchemy.exc import DBAPIError

from capplan_cli.output import console, err_console, fail, plans_table, print_json
from capplan_cli.runner import check_inputs, public, run_capacity_plan


def register(app: typer.Typer) -> None:
    @app.command("plan")
    def plan(
        metrics: Path | None = typer.Option(
            None,
            "--metrics",
            help="metrics file (CSV/Parquet) for offline planning; "
            "default: the history stored by collect-metrics / `capplan metrics import`",
        ),
        policy: Path | None = typer.Option(
            None,
            "--policy",
            help="preview the policies of this YAML file (never stored); "
            "default: the stored policies (capplan policies apply FILE)",
        ),
        policies: str | None = typer.Option(None, "--policies", help="comma-separated names"),
        as_of: datetime | None = typer.Option(
            None,
            "--as-of",
            help="preview as of this UTC time (default: now; with "
            "--metrics, the end of the file's data); refused with --save: a saved plan is "
            "made at the wall clock",
            formats=[
                "%Y-%m-%dT%H:%M:%SZ",
                "%Y-%m-%dT%H:%M:%S%z",
                "%Y-%m-%dT%H:%M:%S",
                "%Y-%m-%d %H:%M:%S",
                "%Y-%m-%d",
            ],
        ),
        as_json: bool = typer.Option(False, "--json", help="print JSON"),
        save: bool = typer.Option(
            False,
            "--save",
            help="store the plans (the stored policies only); default: write nothing",
        ),
    ) -> None:
        """Plan and simulate each policy's queue. Never pauses, approves or scales anything,
        and writes nothing unless --save."""
        names = [n.strip() for n in policies.split(",") if n.strip()] if policies else None
        if save and as_of is not None:
            fail(
                f"--as-of: {as_of.isoformat()!r} is refused with --save: a saved plan is made "
                "at the wall clock, so that it can be executed; --as-of is for previews "
                "(without --save) and backtests"
            )
        if save and policy is not None:
            fail(
                f"--save: {str(policy)!r} is previewed, never stored; store the policies "
                "with `capplan policies apply FILE`, then `capplan plan --save`"
            )
        check_inputs(metrics, policy, names)
        try:
            with cycle_progress():
                results = run_capacity_plan(
                    metrics, policy, names=names, as_of=as_of, approval="none", save=save
                )
        except Exception as err:  # a store error was retried by the store tasks first
            db = _store_error(err)
            if db is None:
                raise
            fail(
                f"the plan store is unreachable ({type(db).__name__}): "
                f"{str(db).strip().splitlines()[0]}; nothing was planned",
                code=1,
            )
        if as_json:
            print_json([public(r) for r in results])
        else:
            console.print(plans_table(results, "capplan plan"))
        if any(r.get("status") == "failed" for r in results):
            raise typer.Exit(1)  # the output above names each failed queue and its error


@contextmanager
def cycle_progress() -> Iterator[None]:
    """A progress bar (stderr) that advances as plan-chunk task runs finish; hidden off a
    terminal, so --json and pipes see nothing of it."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from tasks.batch import add_progress_listener

    bar = Progress(
        "planning queues",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=not err_console.is_terminal,
        transient=True,
    )
    job = bar.add_task("plan", total=None)

    def advance(done: int, total: int) -> None:
        bar.update(job, completed=done, total=total)

    remove = add_progress_listener(advance)
    try:
        with bar:
            yield
    finally:
        remove()


def _store_error(err: BaseException | None) -> BaseException | None:
    """The database error behind ``err`` (itself or a cause), or None."""
    while err is not None:
        if isinstance(err, DBAPIError):
            return err.orig or err
        err = err.__cause__
    return None
