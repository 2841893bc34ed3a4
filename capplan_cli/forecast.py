"""``capplan forecast``: forecast one queue's arrival rate from a metrics file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pandas as pd
import typer
from rich.table import Table

from capplan_cli.output import console, fail, print_json
from capplan_core.forecast import ForecastResult, NoHistoryError, forecast_queue
from capplan_core.forecast.prep import infer_interval_s
from capplan_core.metrics.file_source import read_metrics_file
from capplan_core.metrics.schema import MetricsFileError
from capplan_core.policy import ForecastSpec

MODEL_NAMES: tuple[str, ...] = get_args(ForecastSpec.model_fields["model"].annotation)
_UNITS_S = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)?\s*$", re.IGNORECASE)


def parse_duration_s(flag: str, value: str, default_unit: str) -> float:
    """'24h', '90m', '2d', '300s' -> seconds; a bare number uses ``default_unit``."""
    m = _DURATION.match(value)
    if not m or float(m.group(1)) <= 0:
        fail(f"{flag}: expected a positive duration like 15m, 6h or 2d, got {value!r}")
        raise AssertionError  # unreachable: fail() exits
    unit = (m.group(2) or default_unit).lower()
    return float(m.group(1)) * _UNITS_S[unit]


def parse_levels(value: str) -> tuple[float, ...]:
    """'80,95' or '0.8,0.95' -> (0.8, 0.95)."""
    out = []
    for part in (p.strip() for p in value.split(",")):
        try:
            v = float(part)
        except ValueError:
            v = float("nan")
        v = v / 100 if v >= 1 else v
        if not 0 < v < 1:
            fail(
                f"--levels: each level must be a percentage in (0, 100), got {part!r} in {value!r}"
            )
        out.append(v)
    if not out:
        fail(f"--levels: give at least one level, got {value!r}")
    return tuple(sorted(set(out)))


def result_json(result: ForecastResult) -> dict[str, Any]:
    """The JSON document of ``capplan forecast --json``."""
    frame = result.to_frame()
    points = [
        {"timestamp": ts.isoformat(), **{k: round(float(v), 6) for k, v in row.items()}}
        for ts, row in zip(frame.index, frame.to_dict("records"), strict=True)
    ]
    selection = []
    for entry in result.selection:
        e = dict(entry)
        if "coverage" in e:
            e["coverage"] = {f"{round(float(k) * 100)}": v for k, v in e["coverage"].items()}
        selection.append(e)
    return {
        "queue": result.queue,
        "model": result.model,
        "interval_s": result.interval_s,
        "points": points,
        "selection": selection,
        "recent_anomaly": result.recent_anomaly,
        "anomalies": [t.isoformat() for t in result.anomalies],
        "notes": result.notes,
    }


def _history(metrics: Path, queue: str) -> pd.Series:
    try:
        frame = read_metrics_file(metrics)
    except MetricsFileError as err:
        fail(f"--metrics: {err}")
    rows = frame[frame["queue"] == queue]
    if rows.empty:
        known = ", ".join(sorted(map(str, frame["queue"].unique()))[:20])
        fail(f"--queue: no rows for queue {queue!r} in {str(metrics)!r} (queues: {known})")
    return pd.Series(
        rows["arrival_rate"].to_numpy(dtype=float),
        index=pd.DatetimeIndex(rows["timestamp"]),
        name="arrival_rate",
    )


def _print_table(result: ForecastResult) -> None:
    frame = result.to_frame()
    t = Table(title=f"{result.queue}: {result.model} forecast (jobs/s, {result.interval_s:g} s)")
    t.add_column("window start (UTC)")
    for col in frame.columns:
        t.add_column(col, justify="right")
    for ts, row in frame.iterrows():
        t.add_row(pd.Timestamp(ts).strftime("%Y-%m-%d %H:%M"), *(f"{v:.3f}" for v in row))
    console.print(t)
    sel = Table(title="model selection (rolling-origin backtests)")
    for col in ("model", "MASE", "sMAPE %", "coverage", "chosen"):
        sel.add_column(col)
    for e in result.selection:
        cov = ", ".join(f"{round(k * 100)}%: {v:.2f}" for k, v in e.get("coverage", {}).items())
        sel.add_row(
            e["model"],
            str(e.get("mase", e.get("error", ""))),
            str(e.get("smape", "")),
            cov,
            "yes" if e.get("chosen") else "",
        )
    console.print(sel)
    for note in result.notes:
        console.print(f"note: {note}")


def register(app: typer.Typer) -> None:
    @app.command("forecast")
    def forecast(
        metrics: Path = typer.Option(..., "--metrics", help="metrics file (CSV/Parquet)"),
        queue: str = typer.Option(..., "--queue", help="queue name in the metrics file"),
        horizon: str = typer.Option("24h", "--horizon", help="e.g. 6h, 24h, 7d (max 7d)"),
        model: str = typer.Option("auto", "--model", help=f"one of {', '.join(MODEL_NAMES)}"),
        levels: str = typer.Option("80,95", "--levels", help="interval levels, e.g. 80,95"),
        interval: str | None = typer.Option(
            None, "--interval", help="forecast interval, e.g. 15m (default: input's)"
        ),
        seasonality: str = typer.Option(
            "daily,weekly", "--seasonality", help="daily, weekly or both"
        ),
        figure: Path | None = typer.Option(None, "--figure", help="also write a PNG chart"),
        as_json: bool = typer.Option(False, "--json", help="print JSON"),
    ) -> None:
        """Forecast a queue's arrival rate with intervals; models chosen by backtest."""
        if model not in MODEL_NAMES:
            fail(f"--model: unknown model {model!r}; choose one of {', '.join(MODEL_NAMES)}")
        horizon_s = parse_duration_s("--horizon", horizon, "h")
        if horizon_s > 7 * 86400:
            fail(f"--horizon: at most 7d, got {horizon!r}")
        lv = parse_levels(levels)
        seas = [s.strip() for s in seasonality.split(",") if s.strip()]
        if not seas or any(s not in ("daily", "weekly") for s in seas):
            fail(f"--seasonality: use daily, weekly or daily,weekly, got {seasonality!r}")
        history = _history(metrics, queue)
        if interval is not None:
            step_s = parse_duration_s("--interval", interval, "m")
        else:
            step_s = infer_interval_s(pd.DatetimeIndex(history.index).sort_values()) or 900.0
        if horizon_s < step_s:
            fail(f"--horizon: shorter than one interval ({step_s:g} s), got {horizon!r}")
        spec = ForecastSpec(
            model=model,
            horizon_hours=horizon_s / 3600,
            interval_minutes=int(np.clip(round(step_s / 60), 1, 1440)),
            seasonality=seas,
        )  # type: ignore[arg-type]
        try:
            result = forecast_queue(history, spec, queue=queue, levels=lv, interval_s=step_s)
        except NoHistoryError as err:
            fail(str(err), code=1)
        if figure is not None:
            from capplan_core.forecast.plot import forecast_figure

            forecast_figure(history, result, figure)
        if as_json:
            print_json(result_json(result))
        else:
            _print_table(result)
