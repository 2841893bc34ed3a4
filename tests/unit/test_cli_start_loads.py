"""What the ``capplan`` program loads when it really runs a command that runs no flow (issue 26,
a CLI that answers at once); no timing here, the times are bench/bench_cli_startup.py's.

Each command runs to its end in a fresh interpreter against a migrated SQLite store, which then
reports the heavy libraries it holds: none of the numeric, forecasting, orchestration or
migration ones, no ORM for the commands that only read plans or policies, and nothing but the
index of commands for ``--help``, whose text is the whole app's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capplan_cli.main import COMMANDS, SUMMARIES, app, index_app

ROOT = Path(__file__).resolve().parents[2]
MARK = "LOADED:"
HEAVY = (
    "numpy",
    "pandas",
    "scipy",
    "statsmodels",
    "numba",
    "prefect",
    "great_expectations",
    "alembic",
    "simpy",
    "matplotlib",
    "pyarrow",
)
ORM = ("sqlalchemy.orm", "capplan_adapters.store.models", "capplan_adapters.store.repo")
STORE = ("sqlalchemy", "pydantic_settings", "capplan_app.settings")
COMMAND_MODULES = tuple(f"capplan_cli.{m}" for m in dict.fromkeys(COMMANDS.values()))
SIZE = ["--arrival-rate", "5", "--mean-service-time", "2", "--slo-wait", "10"]


def _run(argv: list[str], env: dict[str, str]) -> tuple[int, list[str], str]:
    """Run ``capplan argv`` as the program does; its exit code, the watched modules it
    loaded, and its output."""
    watched = (*HEAVY, *ORM, *STORE, *COMMAND_MODULES)
    code = (
        "import sys\n"
        f"sys.argv = ['capplan', *{argv!r}]\n"
        "from capplan_cli.main import run\n"
        "try:\n    run()\n    status = 0\n"
        "except SystemExit as done:\n    status = done.code or 0\n"
        f"print({MARK!r} + __import__('json').dumps("
        f"[status, [m for m in {watched!r} if m in sys.modules]]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert MARK in out.stdout, out.stdout + out.stderr
    text, _, tail = out.stdout.rpartition(MARK)
    status, loaded = json.loads(tail)
    return status, loaded, text + out.stderr


@pytest.fixture(scope="module")
def store_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a migrated, empty SQLite store (the default one, under the data
    dir)."""
    env = {
        **os.environ,
        "CAPPLAN_DATA_DIR": str(tmp_path_factory.mktemp("capplan-data")),
        "CAPPLAN_APPROVER_KEY": "k" * 32,
        "CAPPLAN_MIGRATE_ON_START": "true",
    }
    env.pop("CAPPLAN_DATABASE_URL", None)
    status, _, output = _run(["db", "upgrade"], env)
    assert status == 0, output
    return env


@pytest.mark.parametrize(
    ("argv", "allowed"),
    [
        (["plans", "list"], STORE),
        (["plans", "list", "--json"], STORE),
        (["plans", "show", "1"], STORE),  # no such plan: the error after the read
        (["policies", "list"], STORE),
        (["db", "current"], STORE),
        (["size", *SIZE], ()),
        (["approvals", "code", "1", "--decision", "approve"], ()),
    ],
    ids=" ".join,
)
def test_a_command_that_runs_no_flow_loads_no_heavy_library(
    argv: list[str], allowed: tuple[str, ...], store_env: dict[str, str]
) -> None:
    status, loaded, output = _run(argv, store_env)
    assert status in (0, 2), output
    unexpected = [m for m in loaded if m not in allowed and m != f"capplan_cli.{COMMANDS[argv[0]]}"]
    assert unexpected == [], f"capplan {' '.join(argv)} loaded {unexpected}"


@pytest.mark.parametrize("argv", [["--help"], [], ["no-such-command"]], ids=str)
def test_the_index_of_commands_loads_no_command_module(
    argv: list[str], store_env: dict[str, str]
) -> None:
    _, loaded, output = _run(argv, store_env)
    assert loaded == [], f"capplan {' '.join(argv)} loaded {loaded}"
    assert "Commands" in output or "No such command" in output, output


def test_the_index_lists_every_command() -> None:
    assert list(SUMMARIES) != [] and set(SUMMARIES) == set(COMMANDS)


@pytest.mark.parametrize("argv", [["--help"], [], ["no-such-command"]], ids=str)
def test_the_index_answers_as_the_whole_app(argv: list[str]) -> None:
    whole = CliRunner().invoke(app, argv, terminal_width=100)
    index = CliRunner().invoke(index_app(), argv, terminal_width=100)
    assert "Stored capacity plans" in whole.output or "No such command" in whole.output
    assert (index.exit_code, index.output) == (whole.exit_code, whole.output)
