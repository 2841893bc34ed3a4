"""``capplan what-if``: plan and simulate a changed scenario beside the unchanged one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rich.table import Table

from capplan_cli.backtest import parse_time, policies_to_run
from capplan_cli.output import console, fail, print_json
from capplan_core.metrics.file_source import data_end, read_metrics_file_cached
from capplan_core.metrics.schema import MetricsFileError
from capplan_core.whatif import WhatIfError, WhatIfResult, WhatIfScenario, run_what_if

FLAGS = {
    ("multiplier",): "--multiplier",
    ("horizon_hours",): "--horizon-hours",
    ("slo_wait_s",): "--slo-wait",
    ("safety_margin",): "--safety-margin",
    ("failure_mtbf_s",): "--failure-mtbf",
    ("workers",): "--workers",
    ("spike", "size_per_s"): "--spike-size",
    ("spike", "at"): "--spike-at",
    ("spike", "offset_minutes"): "--spike-at",
    ("spike", "duration_minutes"): "--spike-minutes",
    ("spike",): "--spike-at",
}


def parse_workers(value: str | None) -> int | None:
    if value is None or value.strip().lower() == "plan":
        return None
    try:
        return int(value)
    except ValueError:
        fail(f"--workers: expected a whole number of workers or 'plan', got {value!r}")
        raise AssertionError from None  # unreachable: fail() exits


def spike_doc(size: float | None, at: str | None, minutes: float | None) -> dict[str, Any] | None:
    if size is None:
        if at is not None or minutes is not None:
            fail("--spike-at/--spike-minutes need --spike-size (extra jobs/s)")
        return None
    doc: dict[str, Any] = {"size_per_s": size}
    if minutes is not None:
        doc["duration_minutes"] = minutes
    if at is not None:
        try:
            doc["offset_minutes"] = float(at)
        except ValueError:
            doc["at"] = parse_time("--spike-at", at)
    return doc


def build_scenario(raw: dict[str, Any]) -> WhatIfScenario:
    """Validate the flags as a scenario; exit 2 naming the flag and the value."""
    try:
        return WhatIfScenario.model_validate(raw)
    except ValidationError as err:
        parts = []
        for e in err.errors():
            loc = tuple(str(x) for x in e["loc"])
            flag = FLAGS.get(loc, ".".join(loc))
            value = e.get("input")
            shown = "" if isinstance(value, dict) else f" (got {value!r})"
            parts.append(f"{flag}: {e['msg']}{shown}")
        fail("; ".join(parts))
        raise AssertionError from None  # unreachable


def result_table(r: WhatIfResult) -> Table:
    t = Table(title=f"what-if {r.policy} ({r.queue}) as of {r.as_of.isoformat()}")
    for col in ("metric", "baseline", "scenario", "change"):
        t.add_column(col, justify="left" if col == "metric" else "right")

    def show(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, bool):
            return "yes" if v else "no"
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    for row in r.table()["rows"]:
        t.add_row(row["metric"], show(row["baseline"]), show(row["scenario"]), show(row["change"]))
    return t


def register(app: typer.Typer) -> None:
    @app.command("what-if")
    def what_if(
        metrics: Path = typer.Option(..., "--metrics", help="metrics file (CSV/Parquet)"),
        policy: Path = typer.Option(..., "--policy", help="policy YAML file"),
        queue: str = typer.Option(..., "--queue", help="queue (or policy name) to plan"),
        multiplier: float = typer.Option(1.0, "--multiplier", help="demand multiplier"),
        spike_size: float | None = typer.Option(None, "--spike-size", help="extra jobs/s"),
        spike_at: str | None = typer.Option(
            None, "--spike-at", help="spike start: ISO-8601 UTC time or minutes from now"
        ),
        spike_minutes: float | None = typer.Option(
            None, "--spike-minutes", help="spike length, minutes (default 30)"
        ),
        slo_wait: float | None = typer.Option(None, "--slo-wait", help="wait SLO override, s"),
        safety_margin: float | None = typer.Option(
            None, "--safety-margin", help="safety margin override (0.2 = 20%)"
        ),
        failure_mtbf: float | None = typer.Option(
            None, "--failure-mtbf", help="mean time between worker failures, s"
        ),
        workers: str | None = typer.Option(
            None, "--workers", help="hold this many workers, or 'plan' (default) to plan"
        ),
        horizon_hours: float | None = typer.Option(
            None, "--horizon-hours", help="planning horizon, h"
        ),
        as_of: str | None = typer.Option(
            None, "--as-of", help="plan as of this UTC time (default: end of the data)"
        ),
        as_json: bool = typer.Option(False, "--json", help="print JSON"),
    ) -> None:
        """Plan + simulate the unchanged and the changed scenario, side by side."""
        pol = policies_to_run(policy, queue, None)
        if len(pol) > 1:
            fail(
                f"--queue: {queue!r} is governed by several policies "
                f"{[p.name for p in pol]}; give one policy name"
            )
        scenario = build_scenario(
            {
                "policy": pol[0].name,
                "multiplier": multiplier,
                "horizon_hours": horizon_hours,
                "spike": spike_doc(spike_size, spike_at, spike_minutes),
                "slo_wait_s": slo_wait,
                "safety_margin": safety_margin,
                "failure_mtbf_s": failure_mtbf,
                "workers": parse_workers(workers),
            }
        )
        try:
            frame = read_metrics_file_cached(metrics)
            now = parse_time("--as-of", as_of) or data_end(metrics)
        except MetricsFileError as err:
            fail(f"--metrics: {err}")
        rows = frame.loc[frame["queue"] == pol[0].queue].reset_index(drop=True)
        try:
            result = run_what_if(rows, pol[0], scenario, as_of=now)
        except WhatIfError as err:
            fail(str(err))
        if as_json:
            print_json(result.to_dict())
        else:
            console.print(result_table(result))
            for note in result.notes:
                console.print(f"note: {note}")
