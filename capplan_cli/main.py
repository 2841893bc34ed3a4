"""The ``capplan`` command line.

Each command lives in a module of its own that registers itself on the app. The ``capplan``
program (:func:`run`) imports only the module of the command asked for (``capplan plans
list`` never loads the forecasting or simulation libraries); ``capplan``, ``--help`` or an
unknown command import them all, so the help lists every command. :data:`COMMANDS` maps each
top-level command to its module, and a test checks the map against what the modules really
register. ``from capplan_cli.main import app`` gives the whole app (tests, embedding).
"""

from __future__ import annotations

import os
import sys

import typer

# A loaded machine can take longer than Prefect's default 20 s to start the temporary server.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
# Prefect retries 429/502/503 answers itself; a busy server gets more tries (default 5)
os.environ.setdefault("PREFECT_CLIENT_MAX_RETRIES", "8")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

#: top-level command -> the module (in capplan_cli) that registers it
COMMANDS: dict[str, str] = {
    "demo": "demo",
    "plan": "plan_cmd",
    "plans": "plans",
    "size": "size",
    "simulate": "simulate",
    "forecast": "forecast",
    "collect": "collect",
    "backtest": "backtest",
    "what-if": "whatif",
    "metrics": "metrics",
    "db": "db",
    "exporter": "exporter",
    "policies": "policies",
    "approvals": "approval_keys",
    "rbac": "rbac",
}


def modules_for(argv: list[str]) -> list[str]:
    """The command modules a command line needs: the named command's, or all of them."""
    first = next((a for a in argv if not a.startswith("-")), None)
    if first in COMMANDS:
        return [COMMANDS[first]]
    return list(dict.fromkeys(COMMANDS.values()))


def build_app(modules: list[str]) -> typer.Typer:
    app = typer.Typer(
        name="capplan",
        help="Predictive capacity planner for queue worker pools (Prefect-orchestrated).",
        no_args_is_help=True,
        add_completion=False,
    )

    @app.callback()
    def _group() -> None:
        """Keeps the app a group of commands when only one command module is loaded (Typer
        would otherwise make that single command the whole program and refuse its name)."""

    for name in modules:
        __import__(f"capplan_cli.{name}", fromlist=["register"]).register(app)
    return app


def run() -> None:
    """The ``capplan`` program: the app with only the command line's module loaded."""
    build_app(modules_for(sys.argv[1:]))()


def __getattr__(name: str) -> typer.Typer:
    if name == "app":  # every command, for importers (CliRunner in the tests)
        return build_app(list(dict.fromkeys(COMMANDS.values())))
    raise AttributeError(name)


if __name__ == "__main__":
    run()
