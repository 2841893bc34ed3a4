"""``capplan simulate`` output and flag errors; ``SimScenario`` / ``simulate`` input checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from capplan_cli import simulate as simulate_cli
from capplan_core.simulation import SimScenario, simulate, wilson_ci


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    a = typer.Typer()
    simulate_cli.register(a)

    @a.command("noop")  # a second command so typer keeps "simulate" as a named subcommand
    def _noop() -> None: ...

    return a


def _run(app, *args: str):
    return CliRunner().invoke(app, ["simulate", *args])


def test_json_has_waits_with_intervals_jobs_and_engine(app):
    res = _run(
        app,
        "--arrival-rate",
        "4",
        "--mean-service-time",
        "1",
        "--workers",
        "5",
        "--hours",
        "0.5",
        "--replications",
        "4",
        "--seed",
        "3",
        "--json",
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    for key in ("mean_wait_s", "wait_probability", "wait_p95_s"):
        lo, hi = out[f"{key}_ci95"]
        assert lo <= out[key] <= hi
    assert out["engine"] == "fast" and out["jobs"] > 4 * 0.5 * 3600 * 4 * 0.9
    again = json.loads(
        _run(
            app,
            "--arrival-rate",
            "4",
            "--mean-service-time",
            "1",
            "--workers",
            "5",
            "--hours",
            "0.5",
            "--replications",
            "4",
            "--seed",
            "3",
            "--json",
        ).output
    )
    assert again == out


def test_service_scv_and_engine_flags_are_used(app):
    res = _run(
        app,
        "--arrival-rate",
        "2",
        "--mean-service-time",
        "1",
        "--workers",
        "3",
        "--service-scv",
        "0",
        "--hours",
        "0.2",
        "--replications",
        "2",
        "--engine",
        "simpy",
        "--json",
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["engine"] == "simpy"


def test_plain_output_is_readable(app):
    res = _run(
        app,
        "--arrival-rate",
        "2",
        "--mean-service-time",
        "1",
        "--workers",
        "3",
        "--hours",
        "0.2",
        "--replications",
        "2",
    )
    assert res.exit_code == 0 and "mean_wait_s" in res.output and "95% CI" in res.output


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--arrival-rate", "-1"),
        ("--mean-service-time", "0"),
        ("--workers", "0"),
        ("--hours", "nan"),
        ("--replications", "0"),
        ("--seed", "-2"),
        ("--engine", "gpu"),
        ("--service-scv", "-0.5"),
    ],
)
def test_bad_flag_exits_2_naming_flag_and_value(app, flag, value):
    args = {"--arrival-rate": "1", "--mean-service-time": "1", "--workers": "2"}
    args[flag] = value
    res = _run(app, *[x for kv in args.items() for x in kv])
    assert res.exit_code == 2
    assert flag in res.output and value in res.output


def _ok(**kw) -> dict:
    base = dict(horizon_s=100.0, window_s=50.0, rates_per_s=np.ones(2), initial_workers=1)
    base.update(kw)
    return base


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"horizon_s": 0.0}, "horizon_s"),
        ({"rates_per_s": np.ones(3)}, "rates_per_s"),
        ({"rates_per_s": np.array([1.0, -1.0])}, "rates_per_s"),
        ({"initial_workers": -1}, "initial_workers"),
        ({"steps": [(10.0, -2)]}, "steps[0] workers"),
        ({"service_kind": "weibull"}, "service_kind"),
        ({"service_kind": "empirical"}, "service_samples_s"),
        ({"mtbf_s": 0.0}, "mtbf_s"),
        ({"slo_wait_quantile": 1.0}, "slo_wait_quantile"),
        ({"warmup_s": 100.0}, "warmup_s"),
        ({"arrival_times_s": np.array([1.0])}, "together"),
        ({"arrival_times_s": np.array([2.0, 1.0]), "service_times_s": np.ones(2)}, "sorted"),
        ({"arrival_times_s": np.array([1.0]), "service_times_s": np.ones(2)}, "service_times_s"),
    ],
)
def test_scenario_rejects_bad_input_naming_the_field(kw, field):
    with pytest.raises(ValueError, match=field.replace("[", r"\[").replace("]", r"\]")):
        SimScenario(**_ok(**kw))


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"replications": 0}, "replications"),
        ({"seed": -1}, "seed"),
        ({"engine": "x"}, "engine"),
    ],
)
def test_simulate_rejects_bad_arguments(kw, field):
    args = {"replications": 1, "seed": 0, "engine": "auto", **kw}
    with pytest.raises(ValueError, match=field):
        simulate(SimScenario(**_ok()), **args)


def test_wilson_interval_known_values():
    lo, hi = wilson_ci(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    assert wilson_ci(0, 20)[0] == 0.0 and wilson_ci(20, 20)[1] == 1.0


def test_more_workers_never_mean_longer_waits():
    waits = []
    for c in (3, 4, 6, 10):
        sc = SimScenario(
            **_ok(rates_per_s=np.full(2, 2.5), initial_workers=c, horizon_s=2000.0, window_s=1000.0)
        )
        waits.append(simulate(sc, replications=3, seed=4, engine="fast").mean_wait_s)
    assert all(a >= b for a, b in zip(waits, waits[1:], strict=False))
