"""``capplan plan``: plan every policy on a metrics file, without approving or executing."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer

from capplan_app.bootstrap import DEMO_METRICS, DEMO_POLICIES
from capplan_cli.output import console, plans_table, print_json
from capplan_cli.runner import check_inputs, public, run_capacity_plan


def register(app: typer.Typer) -> None:
    @app.command("plan")
    def plan(
        metrics: Path = typer.Option(DEMO_METRICS, "--metrics", help="metrics file (CSV/Parquet)"),
        policy: Path = typer.Option(DEMO_POLICIES, "--policy", help="policy YAML file"),
        policies: str | None = typer.Option(None, "--policies", help="comma-separated names"),
        as_of: datetime | None = typer.Option(
            None, "--as-of", help="plan as of this UTC time (default: end of the metrics data)",
            formats=["%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S",
                     "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"]),
        as_json: bool = typer.Option(False, "--json", help="print JSON"),
    ) -> None:
        """Plan and simulate each policy's queue. Never pauses, approves or scales anything."""
        names = [n.strip() for n in policies.split(",") if n.strip()] if policies else None
        check_inputs(metrics, policy, names)
        results = run_capacity_plan(metrics, policy, names=names, as_of=as_of, approval="none")
        if as_json:
            print_json([public(r) for r in results])
        else:
            console.print(plans_table(results, "capplan plan"))
