"""Prefect artifacts: what a person looks at in the UI for each stage."""

from __future__ import annotations

import base64
import re
import tempfile
from pathlib import Path
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from capplan_core.engine_labels import engine_label
from capplan_core.forecast import ForecastResult
from capplan_core.planning.markdown import plan_markdown, table
from capplan_core.quality import Assessment
from tasks.common import capplan_task


def artifact_key(kind: str, queue: str) -> str:
    """Artifact keys may hold only lowercase letters, digits and dashes."""
    return f"{kind}-" + re.sub(r"[^a-z0-9-]+", "-", queue.lower()).strip("-")


@capplan_task(name="publish-data-quality")
def publish_quality(assessment: Assessment) -> None:
    q = assessment.quality
    rows = [
        {
            "expectation": c["label"] if c["label"] != c["expectation"] else c["expectation"],
            "column": c["column"] or "",
            "severity": c["severity"],
            "result": "pass" if c["success"] else "FAIL",
            "unexpected": c["unexpected_count"] if c["unexpected_count"] is not None else "",
            "detail": c["message"],
        }
        for c in q.checks
    ]
    create_table_artifact(
        rows,
        key=artifact_key("data-quality", q.queue),
        description=f"Data quality for `{q.queue}`: "
        + ("passed" if q.passed else f"**not planned** — {q.reason}")
        + f"; cleaning: {assessment.clean.report}",
    )


def _png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


@capplan_task(name="publish-forecast")
def publish_forecast(assessment: Assessment, fc: ForecastResult) -> None:
    from capplan_core.forecast.plot import forecast_figure

    rows: list[dict[str, Any]] = []
    for i, t in enumerate(fc.timestamps):
        row: dict[str, Any] = {"timestamp": t.isoformat(), "mean": round(float(fc.mean[i]), 4)}
        for lvl, (lo, hi) in sorted(fc.bounds.items()):
            pct = int(round(lvl * 100))
            row[f"lower_{pct}"] = round(float(lo[i]), 4)
            row[f"upper_{pct}"] = round(float(hi[i]), 4)
        rows.append(row)
    create_table_artifact(
        rows,
        key=artifact_key("forecast-table", fc.queue),
        description=f"Forecast of arrival rate (jobs/s) for `{fc.queue}`, model `{fc.model}`",
    )
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "forecast.png"
        forecast_figure(assessment.clean.series["arrival_rate"], fc, png)
        picture = f"![forecast]({_png_data_uri(png)})"
    sel = table(fc.selection) if fc.selection else "_no backtest (short history)_"
    create_markdown_artifact(
        f"## Forecast for `{fc.queue}` — model `{fc.model}`\n\n{picture}\n\n"
        f"### Model selection (rolling-origin backtest)\n{sel}\n\n"
        + ("\n".join(f"- {n}" for n in fc.notes)),
        key=artifact_key("forecast", fc.queue),
        description=f"Forecast for {fc.queue}",
    )


@capplan_task(name="publish-plan")
def publish_plan(
    summary: dict[str, Any], details: dict[str, Any], explanation: list[dict[str, Any]]
) -> None:
    md = plan_markdown(summary, details)
    if explanation:
        md += "\n\n#### Why each window has its worker count\n" + table(explanation)
    create_markdown_artifact(
        md,
        key=artifact_key("plan", summary["queue"]),
        description=f"Capacity plan {summary['id']} for {summary['queue']}",
    )
    sim = summary.get("simulation") or {}
    if sim:
        create_table_artifact(
            [
                {"metric": k, "value": v if not isinstance(v, list) else str(v)}
                for k, v in sim.items()
            ],
            key=artifact_key("simulation", summary["queue"]),
            description=f"Plan {summary['id']} proved by {engine_label(str(sim.get('engine')))}",
        )
