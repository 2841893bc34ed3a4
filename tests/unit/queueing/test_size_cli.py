"""``capplan size``: the answer, its JSON, and clear errors for bad flags."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from capplan_cli import size
from capplan_core.queueing import mean_wait_s, wait_quantile_s


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    a = typer.Typer()
    size.register(a)

    @a.command("noop")  # a second command so typer keeps "size" as a named subcommand
    def _noop() -> None: ...

    return a


def _run(app, *args: str):
    return CliRunner().invoke(app, ["size", *args])


def test_json_gives_the_least_workers_and_predictions(app):
    res = _run(
        app,
        "--arrival-rate",
        "10",
        "--mean-service-time",
        "2",
        "--slo-wait",
        "5",
        "--slo-quantile",
        "0.95",
        "--json",
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out) == {
        "workers",
        "utilization",
        "wait_probability",
        "mean_wait_s",
        "wait_quantile_s",
    }
    c = out["workers"]
    assert wait_quantile_s(10, 0.5, c, 0.95) <= 5 < wait_quantile_s(10, 0.5, c - 1, 0.95)
    assert out["utilization"] == pytest.approx(20 / c)
    assert out["mean_wait_s"] == pytest.approx(mean_wait_s(10, 0.5, c), rel=1e-12)
    assert out["wait_quantile_s"] <= 5


def test_no_hidden_margin_or_utilisation_cap(app):
    # 95 % within 60 s at A = 9.5 Erlangs: 10 workers (utilisation 0.95) are enough
    res = _run(
        app,
        "--arrival-rate",
        "9.5",
        "--mean-service-time",
        "1",
        "--slo-wait",
        "60",
        "--slo-quantile",
        "0.95",
        "--json",
    )
    out = json.loads(res.stdout)
    assert out["workers"] == 10 and out["utilization"] == pytest.approx(0.95)


def test_service_scv_uses_allen_cunneen(app):
    args = [
        "--arrival-rate",
        "50",
        "--mean-service-time",
        "1",
        "--slo-wait",
        "1",
        "--slo-quantile",
        "0.95",
        "--json",
    ]
    expo = json.loads(_run(app, *args).stdout)
    bursty = json.loads(_run(app, *args, "--service-scv", "4").stdout)
    assert bursty["workers"] > expo["workers"]
    c = bursty["workers"]
    assert bursty["mean_wait_s"] == pytest.approx(2.5 * mean_wait_s(50, 1, c), rel=1e-12)


def test_human_output_names_the_numbers(app):
    res = _run(app, "--arrival-rate", "10", "--mean-service-time", "2", "--slo-wait", "5")
    assert res.exit_code == 0, res.output
    assert "workers needed:" in res.stdout and "P(wait)" in res.stdout


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--arrival-rate", "-1"),
        ("--arrival-rate", "0"),
        ("--arrival-rate", "nan"),
        ("--mean-service-time", "0"),
        ("--slo-wait", "-5"),
        ("--slo-quantile", "1"),
        ("--slo-quantile", "0"),
        ("--slo-quantile", "1.5"),
        ("--service-scv", "-0.5"),
        ("--service-scv", "inf"),
    ],
)
def test_bad_flag_values_exit_2_naming_flag_and_value(app, flag, value):
    good = {
        "--arrival-rate": "10",
        "--mean-service-time": "2",
        "--slo-wait": "5",
        "--slo-quantile": "0.95",
    }
    good[flag] = value
    args = [x for kv in good.items() for x in kv]
    res = _run(app, *args)
    assert res.exit_code == 2
    err = res.output + (res.stderr if res.stderr_bytes is not None else "")
    assert flag in err and value.lstrip("-").split(".")[0] in err


def test_missing_required_flag_exits_2(app):
    res = _run(app, "--arrival-rate", "10", "--mean-service-time", "2")
    assert res.exit_code == 2
    assert "--slo-wait" in res.output
