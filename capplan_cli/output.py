"""Shared CLI output helpers."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

# wide enough for plan tables when the output is not a terminal (CI logs, pipes)
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def fail(message: str, code: int = 2) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def plans_table(results: list[dict[str, Any]], title: str = "Plans") -> Table:
    t = Table(title=title)
    for col in ("id", "queue", "mode", "status", "workers", "confidence", "slo", "steps", "note"):
        t.add_column(col)
    for r in results:
        sim = r.get("simulation") or {}
        conf = r.get("confidence")
        t.add_row(
            str(r.get("id", "")),
            " + ".join(c["queue"] for c in sim.get("classes") or ()) or str(r.get("queue")),
            str(r.get("mode")),
            str(r.get("status")),
            ""
            if r.get("target_workers") is None
            else f"{r.get('current_workers')} → {r.get('target_workers')}",
            "" if conf is None else f"{conf:.2f}",
            _slo_cell(r.get("slo_achievable"), sim),
            str(len(r.get("steps") or [])),
            _short(r.get("skipped_reason") or r.get("error") or r.get("note") or ""),
        )
    return t


def _slo_cell(achievable: bool | None, sim: dict[str, Any]) -> str:
    """The simulated verdict and wait: the pool's p95, or, for a pool shared by several
    queues, each queue's wait at its own SLO quantile."""
    if achievable is None:
        return ""
    verdict = "ok" if achievable else "NOT met"
    classes = sim.get("classes") or ()
    if classes:
        return verdict + "".join(
            f", {c['queue']} p{100 * c['wait_quantile']:g} {c['wait_quantile_s']:.1f}s"
            for c in classes
        )
    wait = sim.get("p95_wait_s")
    return verdict + (f", p95 wait {wait:.1f}s" if wait is not None else "")


def _short(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
