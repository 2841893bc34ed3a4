"""The ``capplan`` command line."""

from __future__ import annotations

import os

import typer

# A loaded machine can take longer than Prefect's default 20 s to start the temporary server.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
# Prefect retries 429/502/503 answers itself; a busy server gets more tries (default 5)
os.environ.setdefault("PREFECT_CLIENT_MAX_RETRIES", "8")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

from capplan_cli import demo, plan_cmd, plans  # noqa: E402

app = typer.Typer(
    name="capplan",
    help="Predictive capacity planner for queue worker pools (Prefect-orchestrated).",
    no_args_is_help=True,
    add_completion=False,
)

demo.register(app)
plan_cmd.register(app)
plans.register(app)

for _optional in ("size", "simulate", "forecast", "collect", "backtest", "whatif", "metrics",
                  "db", "exporter", "policies", "approval_keys", "rbac"):
    # each command module registers itself; imported lazily so a broken optional module
    # cannot hide the core commands
    try:
        __import__(f"capplan_cli.{_optional}", fromlist=["register"]).register(app)
    except ModuleNotFoundError as err:
        if err.name != f"capplan_cli.{_optional}":
            raise

if __name__ == "__main__":
    app()
