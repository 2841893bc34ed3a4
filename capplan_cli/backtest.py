"""``capplan backtest``: replay history with capplan's plans against static, reactive, oracle.

For every selected policy the queue's rows are replayed over [--from, --to) (default: the last
two days of the data); a pool shared by several queues is replayed on all of them and each
queue is scored against its own SLO. See docs/backtest.md for the model and the JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from capplan_cli.output import console, err_console, fail, print_json
from capplan_core.backtest import BacktestError, BacktestResult, run_backtest
from capplan_core.backtest.shared import SharedBacktestResult, run_shared_backtest
from capplan_core.metrics.file_source import read_metrics_file_cached
from capplan_core.metrics.schema import MetricsFileError
from capplan_core.policy import PolicyError, ScalingPolicy, load_policies
from capplan_core.policy_select import PolicySelectionError, select_policies
from capplan_core.utc import utc_timestamp


def parse_time(flag: str, value: str | None) -> pd.Timestamp | None:
    """An ISO-8601 time (UTC unless it says otherwise); exit 2 naming the flag if not."""
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        ts = pd.NaT
    if ts is pd.NaT or pd.isna(ts):
        fail(f"{flag}: expected an ISO-8601 time like 2026-11-19T00:00:00Z, got {value!r}")
    return utc_timestamp(ts)


def policies_to_run(path: Path, queue: str | None, names: str | None) -> list[ScalingPolicy]:
    """The policies to run: by --queue, by --policies, or every enabled one."""
    try:
        policies = load_policies(path)
    except PolicyError as err:
        fail(f"--policy: {err}")
    wanted = None if names is None else [n.strip() for n in names.split(",") if n.strip()]
    if wanted == []:
        fail(f"--policies: no policy name in {names!r}")
    try:
        return select_policies(policies, names=wanted, queue=queue)
    except PolicySelectionError as err:
        fail(f"--{'policies' if err.field == 'names' else 'queue'}: {err}")


def figure_path(base: Path, policy: str, many: bool) -> Path:
    return base.with_name(f"{base.stem}-{policy}{base.suffix or '.png'}") if many else base


def _fmt(v: Any, spec: str, none: str = "overload") -> str:
    return none if v is None else format(v, spec)


def result_table(r: BacktestResult) -> Table:
    d = r.to_dict()
    t = Table(
        title=f"backtest {r.policy} ({r.queue}) {d['start']} .. {d['end']}, "
        f"{len(d['windows'])} windows"
    )
    for col in (
        "strategy",
        "SLO met",
        "p95 wait (s)",
        "worst backlog",
        "worker-h",
        "x oracle",
        "x rate oracle",
        "cost",
        "actions",
    ):
        t.add_column(col, justify="left" if col == "strategy" else "right")
    for name, s in d["strategies"].items():
        t.add_row(
            name,
            f"{s['slo_attainment']:.1%}",
            _fmt(s["wait_p95_s"], ".1f"),
            _fmt(s["worst_backlog"], ".0f", "-"),
            f"{s['worker_hours']:.1f}",
            _fmt(s["worker_hours_vs_oracle"], ".2f", "-"),
            _fmt(s.get("worker_hours_vs_rate_oracle"), ".2f", "-"),
            f"{s['cost']:.2f}",
            str(s["scaling_actions"]),
        )
    return t


def shared_result_table(r: SharedBacktestResult) -> Table:
    """A shared pool's strategies: the pool's cost and each queue's attainment of its SLO."""
    d = r.to_dict()
    t = Table(
        title=f"backtest of shared pool {r.policy} ({' then '.join(r.queues)}, "
        f"{r.discipline}) {d['start']} .. {d['end']}, {len(d['windows'])} windows"
    )
    columns = ["strategy", "pool SLO met", *(f"{q} met" for q in r.queues)]
    for col in (*columns, "worker-h", "x oracle", "cost", "actions"):
        t.add_column(col, justify="left" if col == "strategy" else "right")
    for name, s in d["strategies"].items():
        t.add_row(
            name,
            f"{s['slo_attainment']:.1%}",
            *(f"{s['queues'][q]['slo_attainment']:.1%}" for q in r.queues),
            f"{s['worker_hours']:.1f}",
            _fmt(s["worker_hours_vs_oracle"], ".2f", "-"),
            f"{s['cost']:.2f}",
            str(s["scaling_actions"]),
        )
    return t


@contextmanager
def progress_bar(out: Console, label: str) -> Iterator[Callable[[str, float], None]]:
    """A rich progress bar on ``out`` (stderr, so ``--json`` stays clean) for one policy's
    replay, fed by ``run_backtest(progress=...)``; hidden when ``out`` is not a terminal."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=out, disable=not out.is_terminal) as bar:
        task = bar.add_task(f"backtest {label}", total=100.0)

        def tick(strategy: str, share_done: float) -> None:
            bar.update(
                task, completed=100.0 * share_done, description=f"backtest {label}: {strategy}"
            )

        yield tick


def register(app: typer.Typer) -> None:
    @app.command("backtest")
    def backtest(
        metrics: Path = typer.Option(..., "--metrics", help="metrics file (CSV/Parquet)"),
        policy: Path = typer.Option(..., "--policy", help="policy YAML file"),
        queue: str | None = typer.Option(None, "--queue", help="backtest this queue's policy"),
        policies: str | None = typer.Option(None, "--policies", help="comma-separated names"),
        date_from: str | None = typer.Option(
            None, "--from", help="period start, ISO-8601 UTC (default: 2 days before --to)"
        ),
        date_to: str | None = typer.Option(
            None, "--to", help="period end, ISO-8601 UTC (default: end of the data)"
        ),
        cadence_minutes: float = typer.Option(
            30.0, "--cadence-minutes", help="planning cycle of the predictive strategy"
        ),
        figure: Path | None = typer.Option(
            None, "--figure", help="write the picture here (one file per policy)"
        ),
        as_json: bool = typer.Option(False, "--json", help="print JSON"),
    ) -> None:
        """Score capplan's plans against static-peak, reactive-autoscaler and oracle baselines."""
        start, end = parse_time("--from", date_from), parse_time("--to", date_to)
        if start is not None and end is not None and start >= end:
            fail(f"--from ({date_from}) must be before --to ({date_to})")
        if not cadence_minutes > 0 or cadence_minutes > 24 * 60:
            fail(f"--cadence-minutes must be in (0, 1440], got {cadence_minutes!r}")
        chosen = policies_to_run(policy, queue, policies)
        try:
            frame = read_metrics_file_cached(metrics)
        except MetricsFileError as err:
            fail(f"--metrics: {err}")
        out: list[dict[str, Any]] = []
        failed = False
        for pol in chosen:
            rows = frame.loc[frame["queue"].isin(pol.served_queues)].reset_index(drop=True)
            run = run_shared_backtest if pol.shared is not None else run_backtest
            try:
                with progress_bar(err_console, pol.name) as tick:
                    r = run(
                        rows,
                        pol,
                        start=start,
                        end=end,
                        cadence_s=cadence_minutes * 60.0,
                        progress=tick,
                    )
            except BacktestError as err:
                failed = True
                err_console.print(f"[bold red]error:[/] policy {pol.name!r}: {err}")
                out.append({"policy": pol.name, "queue": pol.queue, "error": str(err)})
                continue
            doc = r.to_dict()
            if figure is not None:
                doc["figure"] = str(r.figure(figure_path(figure, pol.name, len(chosen) > 1)))
            out.append(doc)
            if not as_json:
                if isinstance(r, SharedBacktestResult):
                    console.print(shared_result_table(r))
                else:
                    console.print(result_table(r))
                if "figure" in doc:
                    console.print(f"figure: {doc['figure']}")
        if as_json:
            print_json(out)
        if failed:
            raise typer.Exit(1)
