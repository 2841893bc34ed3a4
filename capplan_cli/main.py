"""The ``capplan`` command line.

Each command lives in a module of its own that registers itself on the app. The ``capplan``
program (:func:`run`) imports only the module of the command asked for (``capplan plans
list`` never loads the forecasting or simulation libraries). ``capplan``, ``--help`` or an
unknown command import none of them: :func:`index_app` answers with a stand-in of each command
that carries its one-line summary (:data:`SUMMARIES`), so the help reads exactly as the whole
app's. :data:`COMMANDS` maps each top-level command to its module; tests check the map against
what the modules really register and the index's help against the whole app's.
``from capplan_cli.main import app`` gives the whole app (tests, embedding).
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


#: each top-level command's summary in ``capplan --help``, in the order the whole app lists them
#: (Typer lists the commands before the groups): the first paragraph of its help
SUMMARIES: dict[str, str] = {
    "demo": "Plan the bundled demo queues: pause for the manual queue, approve it as a demo user.",
    "plan": "Plan and simulate each policy's queue. Never pauses, approves or scales anything,\n"
    "and writes nothing unless --save.",
    "size": "Least number of workers meeting the wait SLO(s), with the predicted queue metrics.",
    "simulate": "Simulate a steady arrival rate on a fixed pool (waits with 95% intervals), or "
    "a\nstored plan with --plan ID.",
    "forecast": "Forecast a queue's arrival rate with intervals; models chosen by backtest.",
    "collect": "Watch one queue for --window seconds and print its measured rates and times.",
    "backtest": "Score capplan's plans against static-peak, reactive-autoscaler and oracle "
    "baselines.",
    "what-if": "Plan + simulate the unchanged and the changed scenario, side by side.",
    "exporter": "Serve the planner's own metrics for Prometheus at http://HOST:PORT/metrics.",
    "plans": "Stored capacity plans.",
    "metrics": "Import metrics files into the store, export them back.",
    "db": "The plan store's schema.",
    "policies": "Versioned scaling policies in the plan store.",
    "approvals": "Approver keys and approval codes.",
    "rbac": "Least-privilege RBAC from the policies.",
}


def command_named(argv: list[str]) -> str | None:
    """The top-level command a command line names (None: none, or an unknown word)."""
    first = next((a for a in argv if not a.startswith("-")), None)
    return first if first in COMMANDS else None


def modules_for(argv: list[str]) -> list[str]:
    """The command modules a command line needs: the named command's, or all of them."""
    first = command_named(argv)
    if first is not None:
        return [COMMANDS[first]]
    return list(dict.fromkeys(COMMANDS.values()))


def _program() -> typer.Typer:
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

    return app


def build_app(modules: list[str]) -> typer.Typer:
    """The program with the commands of ``modules`` (module names in capplan_cli)."""
    app = _program()
    for name in modules:
        __import__(f"capplan_cli.{name}", fromlist=["register"]).register(app)
    return app


def index_app() -> typer.Typer:
    """The program as ``capplan``, ``--help`` and an unknown command see it: every command's
    name and summary, no command module loaded. A stand-in only prints the whole help; it is
    never run, as :func:`run` loads the real command for any command line that names one."""
    app = _program()
    for name, summary in SUMMARIES.items():
        app.command(name, help=summary)(_stand_in)
    return app


def _stand_in() -> None:
    raise RuntimeError("a stand-in command ran: capplan_cli.main.run loads the real one")


def run() -> None:
    """The ``capplan`` program: the app with only the command line's module loaded, or the
    index of commands when the command line names none."""
    argv = sys.argv[1:]
    named = command_named(argv)
    (index_app() if named is None else build_app([COMMANDS[named]]))()


def __getattr__(name: str) -> typer.Typer:
    if name == "app":  # every command, for importers (CliRunner in the tests)
        return build_app(list(dict.fromkeys(COMMANDS.values())))
    raise AttributeError(name)


if __name__ == "__main__":
    run()
