"""``capplan size --class``: the shared-pool contract, one class = the single-queue answer,
and bad values exit 2 naming the flag and the value."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from capplan_cli import size
from capplan_core.queueing import PoolClass, SloTerms, evaluate_pool


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    a = typer.Typer()
    size.register(a)

    @a.command("noop")  # a second command so typer keeps "size" as a named subcommand
    def _noop() -> None: ...

    return a


def _run(app, *args: str):
    return CliRunner().invoke(app, ["size", *args])


def _json(app, *args: str) -> dict:
    res = _run(app, *args, "--json")
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_two_classes_print_the_contract(app):
    out = _json(
        app, "--class", "high=10,1", "--class", "low=30,30,0.99", "--mean-service-time", "2"
    )
    assert {"workers", "classes"} <= set(out)
    assert out["exact"] is True and out["discipline"] == "strict"
    assert [c["name"] for c in out["classes"]] == ["high", "low"]
    for c in out["classes"]:
        assert {"name", "arrival_rate", "wait_quantile_s", "meets_slo"} <= set(c)
        assert c["meets_slo"] is True
    n = out["workers"]
    classes = [PoolClass("high", 10, SloTerms(1.0)), PoolClass("low", 30, SloTerms(30.0, 0.99))]
    fewer = evaluate_pool(classes, 2.0, n - 1)
    assert not all(c.meets_slo for c in fewer.classes)
    assert out["classes"][1]["wait_quantile"] == 0.99 and out["classes"][1]["arrival_rate"] == 30


def test_one_class_is_todays_single_queue_sizing(app):
    for extra in ([], ["--service-scv", "3"]):
        pool = _json(app, "--class", "q=10,5,0.95", "--mean-service-time", "2", *extra)
        single = _json(
            app,
            "--arrival-rate",
            "10",
            "--slo-wait",
            "5",
            "--slo-quantile",
            "0.95",
            "--mean-service-time",
            "2",
            *extra,
        )
        assert pool["workers"] == single["workers"]
        assert pool["classes"][0]["wait_quantile_s"] == pytest.approx(
            single["wait_quantile_s"], rel=1e-12
        )


def test_round_robin_names_its_approximation(app):
    out = _json(
        app,
        "--class",
        "a=3,1",
        "--class",
        "b=9,2",
        "--mean-service-time",
        "1",
        "--discipline",
        "round_robin",
    )
    assert out["exact"] is False and "round-robin" in out["model"]
    assert all(c["meets_slo"] for c in out["classes"])


def test_human_output_names_each_class(app):
    res = _run(app, "--class", "high=10,1", "--class", "low=30,30", "--mean-service-time", "2")
    assert res.exit_code == 0, res.output
    assert "high" in res.stdout and "low" in res.stdout and "workers needed" in res.stdout


@pytest.mark.parametrize(
    ("args", "flag", "value"),
    [
        (["--class", "high=abc,1"], "--class", "'abc'"),
        (["--class", "high=-1,1"], "--class", "'-1'"),
        (["--class", "high=1,0"], "--class", "WAIT_S"),
        (["--class", "high=1,2,1.5"], "--class", "'1.5'"),
        (["--class", "high=1,2,nan"], "--class", "'nan'"),
        (["--class", "high"], "--class", "'high'"),
        (["--class", "=1,2"], "--class", "'=1,2'"),
        (["--class", "a=1,2,0.9,7"], "--class", "'a=1,2,0.9,7'"),
        (["--class", "a=1,2", "--class", "a=2,3"], "--class", "'a'"),
        (["--class", "a=1,2", "--discipline", "fifo"], "--discipline", "'fifo'"),
        (["--class", "a=1,2", "--arrival-rate", "3"], "--arrival-rate", "3"),
        (["--class", "a=1,2", "--service-scv", "-1"], "--service-scv", "-1"),
        (
            ["--arrival-rate", "3", "--slo-wait", "2", "--discipline", "round_robin"],
            "--discipline",
            "round_robin",
        ),
    ],
)
def test_bad_class_input_exits_2_naming_flag_and_value(app, args, flag, value):
    res = _run(app, *args, "--mean-service-time", "1")
    assert res.exit_code == 2, res.output
    err = res.output + (res.stderr if res.stderr_bytes is not None else "")
    assert flag in err and value in err, err


def test_size_module_imports_no_core_at_import_time():
    code = (
        "import sys; import capplan_cli.size; "
        "print(any(m.startswith('capplan_core') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
