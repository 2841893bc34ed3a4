"""``capplan`` loads only the module of the command asked for (issue 26, a CLI that answers at
once): the command map matches what the modules register, and the commands that run no flow
load none of the heavy libraries just to start."""

from __future__ import annotations

import subprocess
import sys

import pytest

from capplan_cli.main import COMMANDS, build_app, modules_for

HEAVY = (
    "numpy",
    "pandas",
    "scipy",
    "numba",
    "statsmodels",
    "prefect",
    "great_expectations",
    "sqlalchemy",
    "alembic",
)


def test_the_command_map_is_what_the_modules_register() -> None:
    import typer.main

    app = build_app(list(dict.fromkeys(COMMANDS.values())))
    registered = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    assert registered == set(COMMANDS)


def test_only_the_named_commands_module_is_loaded() -> None:
    assert modules_for(["plans", "list", "--json"]) == ["plans"]
    assert modules_for(["--json", "what-if"]) == ["whatif"]
    assert set(modules_for([])) == set(COMMANDS.values())
    assert set(modules_for(["--help"])) == set(COMMANDS.values())
    assert set(modules_for(["no-such-command"])) == set(COMMANDS.values())


@pytest.mark.parametrize(
    "argv",
    [
        ["plans", "list"],
        ["plans", "show", "1"],
        ["policies", "list"],
        ["db", "current"],
        ["size"],
        ["approvals", "code"],
        ["plans", "approve"],
    ],
)
def test_starting_a_command_that_runs_no_flow_loads_no_heavy_library(argv: list[str]) -> None:
    code = (
        "import sys\nfrom capplan_cli.main import build_app, modules_for\n"
        f"build_app(modules_for({argv!r}))\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]", f"capplan {' '.join(argv)} loads {out} before it runs"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_answers_to_its_name_when_only_its_module_is_loaded(command: str) -> None:
    # one command alone on a Typer app would become the whole program and refuse its own
    # name ("Got unexpected extra argument(s) (demo)"): the program must stay a group
    from typer.testing import CliRunner

    result = CliRunner().invoke(build_app(modules_for([command])), [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: capplan " + command in " ".join(result.output.split())
