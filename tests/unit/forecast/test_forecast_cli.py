"""``capplan forecast`` and the forecast figure."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import typer
from helpers_forecast import seasonal_rates
from typer.testing import CliRunner

from capplan_cli.forecast import register
from capplan_core.forecast import forecast_queue
from capplan_core.forecast.plot import forecast_figure
from capplan_core.policy import ForecastSpec


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    a = typer.Typer()
    register(a)

    @a.command("noop")
    def _noop() -> None:  # a second command keeps typer from collapsing the group
        pass

    return a


@pytest.fixture(scope="module")
def metrics(tmp_path_factory: pytest.TempPathFactory) -> Path:
    hist = seasonal_rates(4, weekly=False, step_min=5)
    frame = pd.DataFrame(
        {
            "timestamp": hist.index.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "queue": "emails",
            "arrival_rate": hist.to_numpy(),
            "service_rate": 0.5,
            "backlog": 0,
            "workers": 10,
        }
    )
    path = tmp_path_factory.mktemp("m") / "metrics.csv"
    frame.to_csv(path, index=False)
    return path


def test_json_output_has_points_and_selection(app: typer.Typer, metrics: Path) -> None:
    out = CliRunner().invoke(
        app,
        [
            "forecast",
            "--metrics",
            str(metrics),
            "--queue",
            "emails",
            "--horizon",
            "2h",
            "--interval",
            "15m",
            "--levels",
            "80,95",
            "--json",
        ],
    )
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["queue"] == "emails" and doc["interval_s"] == 900
    assert len(doc["points"]) == 8
    assert set(doc["points"][0]) == {
        "timestamp",
        "mean",
        "lower_80",
        "upper_80",
        "lower_95",
        "upper_95",
    }
    assert any(e.get("chosen") for e in doc["selection"])
    assert all("mase" in e for e in doc["selection"])


def test_default_interval_is_the_inputs(app: typer.Typer, metrics: Path) -> None:
    out = CliRunner().invoke(
        app,
        [
            "forecast",
            "--metrics",
            str(metrics),
            "--queue",
            "emails",
            "--horizon",
            "1h",
            "--model",
            "ewma",
            "--json",
        ],
    )
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["interval_s"] == 300 and len(doc["points"]) == 12 and doc["model"] == "ewma"


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--horizon", "tomorrow"),
        ("--horizon", "9d"),
        ("--model", "prophet"),
        ("--levels", "80,150"),
        ("--interval", "-5m"),
        ("--queue", "missing"),
    ],
)
def test_bad_flag_exits_2_naming_flag_and_value(
    app: typer.Typer, metrics: Path, flag: str, value: str
) -> None:
    args = {"--metrics": str(metrics), "--queue": "emails", flag: value}
    out = CliRunner().invoke(app, ["forecast", *[x for kv in args.items() for x in kv]])
    assert out.exit_code == 2
    text = " ".join(out.output.split())
    assert flag in text and value in text


def test_forecast_figure_writes_a_png(tmp_path: Path) -> None:
    hist = seasonal_rates(3, weekly=False)
    res = forecast_queue(hist, ForecastSpec(horizon_hours=6), queue="q")
    path = forecast_figure(hist, res, tmp_path / "fc.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
