"""Honest simulation output (issue 15 point 7): the default engine simulates every job when
that fits ~2 s of the fast engine, and says ``approximate`` with null intervals when it does
not; no interval in the output is ever zero-wide."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from capplan_cli import simulate as simulate_cli
from capplan_core.planning.markdown import plan_markdown
from capplan_core.queueing import wait_probability
from capplan_core.simulation import (
    INTERACTIVE_JOB_BUDGET,
    JOB_LEVEL_BUDGET,
    SimScenario,
    choose_engine,
    simulate,
)

WIDEN = 3.2905 / 1.959964  # 95 % interval widened to 99.9 %: several checks, none by chance


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    a = typer.Typer()
    simulate_cli.register(a)

    @a.command("noop")
    def _noop() -> None: ...

    return a


def _json(app: typer.Typer, *args: str) -> dict:
    res = CliRunner().invoke(app, ["simulate", *args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def _no_zero_width(out: dict) -> None:
    cis = {k: v for k, v in out.items() if k.endswith("_ci95")}
    assert len(cis) == 3
    for key, ci in cis.items():
        assert ci is None or ci[1] > ci[0], (key, ci)


def test_two_hour_mmc20_runs_every_job_and_its_interval_holds_erlang_c(app):
    # the scenario of issue 15: 2 h of M/M/20, 10 replications (~7.9 M jobs, under 12 M)
    rate, service_s = 100.0, 0.17
    out = _json(
        app,
        "--arrival-rate",
        str(rate),
        "--mean-service-time",
        str(service_s),
        "--workers",
        "20",
        "--hours",
        "2",
        "--replications",
        "10",
        "--seed",
        "4",
    )
    assert out["engine"] == "fast" and out["approximate"] is False
    assert out["jobs"] > 7_000_000
    _no_zero_width(out)
    exact = wait_probability(rate, 1.0 / service_s, 20)
    lo, hi = out["wait_probability_ci95"]
    half = (hi - lo) / 2 * WIDEN
    assert abs(out["wait_probability"] - exact) <= half, (out["wait_probability"], exact)


def test_huge_scenario_is_flagged_approximate_with_null_intervals(app):
    args = (
        "--arrival-rate",
        "5000",
        "--mean-service-time",
        "0.19",
        "--workers",
        "1000",
        "--hours",
        "2",
        "--replications",
        "10",
    )
    out = _json(app, *args)
    assert out["engine"] == "fluid" and out["approximate"] is True
    assert "approximate" in out["engine_label"]
    _no_zero_width(out)
    assert out["wait_probability_ci95"] is None and out["wait_p95_s_ci95"] is None
    plain = CliRunner().invoke(app, ["simulate", *args])
    assert plain.exit_code == 0 and "approximate" in plain.output
    assert "no interval" in plain.output and "95% CI" not in plain.output


def test_forced_fluid_engine_is_approximate_even_when_small(app):
    out = _json(
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
        "--engine",
        "fluid",
    )
    assert out["approximate"] is True
    _no_zero_width(out)


def test_planning_budget_is_the_callers_and_interactive_budget_is_two_seconds():
    sc = SimScenario(
        horizon_s=3600.0,
        window_s=3600.0,
        rates_per_s=np.array([100.0]),
        initial_workers=20,
        mean_service_s=0.17,
    )
    # 360k jobs per replication: 10 fit the planning default (2 M), 30 do not
    assert choose_engine(sc, 5) == "fast"
    assert choose_engine(sc, 10) == "fluid"
    assert choose_engine(sc, 10, INTERACTIVE_JOB_BUDGET) == "fast"
    assert choose_engine(sc, 10, job_budget=0) == "fluid"
    assert INTERACTIVE_JOB_BUDGET == 12_000_000 and JOB_LEVEL_BUDGET == 2_000_000
    s = simulate(sc, replications=10, seed=0)
    assert s.engine == "fluid" and s.approximate and s.mean_wait_s_ci95 is None


def test_plan_markdown_says_which_engine_proved_the_plan():
    base = {
        "id": 7,
        "queue": "emails",
        "policy": "emails",
        "mode": "manual",
        "current_workers": 3,
        "target_workers": 5,
        "confidence": 0.9,
        "slo_achievable": True,
        "steps": [],
    }
    sim = {
        "p95_wait_s": 1.0,
        "max_backlog": 2.0,
        "utilization_range": [0.5, 0.7],
        "replications": 200,
    }
    fluid = plan_markdown({**base, "simulation": {**sim, "engine": "fluid"}})
    fast = plan_markdown({**base, "simulation": {**sim, "engine": "fast"}})
    assert "**Proved by:** approximate: fluid level" in fluid
    assert "**Proved by:** job-level Monte Carlo (fast engine)" in fast
