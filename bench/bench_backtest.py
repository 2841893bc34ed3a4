"""Backtest benchmark: every strategy on the demo queues and on real public series.

Run:  .venv/bin/python bench/bench_backtest.py [--figures DIR] [--json FILE] [--quick]

Strategies: predictive, hybrid (planned floor + reactive part), reactive (KEDA/HPA), static
peak and oracle, replayed at the service's 30-min re-planning cadence (docs/backtest.md).
Each forecast-driven strategy runs in three configurations:
- ``shipped``: the policy as written (Taylor and elec_equip: demand quantile 0.9 and a 10-20 %
  safety margin on top; the demo: data/demo/policies.yaml as it is now);
- ``calm``: the same policy with ``slo.target_attainment: 0.99`` (size each window to the 99 %
  demand quantile, no margin on top), ``slo.attainment_mode: per_window`` and
  ``scaling.action_cost_worker_hours`` = 5 minutes of the pool (the median replica count in
  the metrics before the period x 5/60);
- ``pooled``: ``calm`` with ``slo.attainment_mode: pooled`` (the 0.99 target spent as a risk
  budget over the horizon, on the counts the scheduler will hold; planning/pooled_sizing.py).
The default ``min_dwell_seconds`` (30 min) and nowcasting (half-life 3 h) apply to all.

Data (named with their sources in bench/real_series.py and docs/backtest.md):
1. the bundled demo (data/demo/metrics.csv.gz, data/demo/policies.yaml), every policy, the
   last two days;
2. ``taylor`` — half-hourly electricity demand of England and Wales, summer 2000 (pmdarima's
   ``load_taylor``), as a pool of 450-930 busy workers with 20-s jobs and a 60-s p95 wait SLO:
   the weeks of Monday 24 July and Monday 21 August 2000;
3. ``elec_equip`` — statsmodels' Eurostat index, one year compressed into a day: 2014-15 and
   2008-09 (the collapse), the demo's ``emails`` policy.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.real_series import (  # noqa: E402
    ELEC_DAY0,
    TAYLOR_START,
    elec_equip_rows,
    taylor_rows,
)
from capplan_core.backtest import BacktestResult, run_backtest  # noqa: E402
from capplan_core.metrics.file_source import read_metrics_file  # noqa: E402
from capplan_core.policy import ScalingPolicy, load_policies, parse_policies  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FORECAST_DRIVEN = ("predictive", "hybrid")
ACTION_COST_POOL_MINUTES = 5.0
TARGET_ATTAINMENT = 0.99


def taylor_policy() -> ScalingPolicy:
    doc = {
        "name": "taylor",
        "queue": "taylor",
        "target": {"name": "w"},
        "slo": {"wait_p95_seconds": 60},
        "scaling": {
            "min_workers": 1,
            "max_workers": 3000,
            "max_step": 300,
            "cooldown_seconds": 300,
            "safety_margin": 0.1,
            "startup_seconds": 60,
        },
        "forecast": {
            "model": "auto",
            "horizon_hours": 6,
            "interval_minutes": 30,
            "seasonality": ["daily", "weekly"],
        },
        "cost": {"worker_hour": 0.5, "violation_hour": 100},
    }
    return parse_policies({"policies": [doc]})[0]


def elec_policy() -> ScalingPolicy:
    demo = {p.name: p for p in load_policies(ROOT / "data/demo/policies.yaml")}["emails"]
    doc = demo.model_dump()
    doc.update(name="elec", queue="elec")
    doc["forecast"]["seasonality"] = ["daily"]
    return ScalingPolicy.model_validate(doc)


def calm(
    policy: ScalingPolicy,
    rows: pd.DataFrame,
    start: pd.Timestamp | None,
    attainment_mode: str = "per_window",
) -> ScalingPolicy:
    """The policy sized to the SLO's target attainment (per window, or ``pooled``), with a
    cost per scaling action."""
    ts = pd.to_datetime(rows["timestamp"], utc=True)
    before = rows.loc[ts < start] if start is not None else rows
    pool = float(np.median(before["workers"])) if len(before) else 1.0
    doc = policy.model_dump()
    doc["slo"]["target_attainment"] = TARGET_ATTAINMENT
    doc["slo"]["attainment_mode"] = attainment_mode
    doc["scaling"]["action_cost_worker_hours"] = round(
        max(pool, 1.0) * ACTION_COST_POOL_MINUTES / 60.0, 2
    )
    return ScalingPolicy.model_validate(doc)


def rows_of(
    label: str,
    config: str,
    r: BacktestResult,
    only: tuple[str, ...] | None = None,
    baseline: BacktestResult | None = None,
) -> list[dict[str, Any]]:
    """Summary rows; ``x_reactive`` is worker-hours / those of the reactive baseline replayed
    in the same process (``baseline``'s, or this run's own)."""
    d = r.to_dict()
    base = (baseline or r).to_dict()["strategies"]["reactive"]["worker_hours"]
    out = []
    for name, s in d["strategies"].items():
        if only is not None and name not in only:
            continue
        out.append(
            {
                "data": label,
                "config": config if name in FORECAST_DRIVEN else "-",
                "strategy": name,
                "windows": len(d["windows"]),
                "slo_attainment": s["slo_attainment"],
                "worker_hours": s["worker_hours"],
                "x_oracle": s["worker_hours_vs_oracle"],
                "x_reactive": s["worker_hours"] / base if base else float("nan"),
                "changes_per_window": s["changes_per_window"],
                "actions_per_day": s["actions_per_day"],
                "wait_p95_s": s["wait_p95_s"],
                "worst_backlog": s["worst_backlog"],
                "runtime_s": d["runtime_s"],
            }
        )
    return out


def markdown(rows: list[dict[str, Any]]) -> str:
    head = (
        "| data | config | strategy | SLO met | x oracle | x reactive | changes/window "
        "| actions/day | worker-h | p95 wait s | worst backlog |"
    )
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        p95 = "overload" if r["wait_p95_s"] is None else f"{r['wait_p95_s']:.1f}"
        lines.append(
            f"| {r['data']} | {r['config']} | {r['strategy']} | {r['slo_attainment']:.1%} | "
            f"{r['x_oracle']:.3f} | {r['x_reactive']:.3f} | {r['changes_per_window']:.0%} | "
            f"{r['actions_per_day']:.1f} | {r['worker_hours']:.0f} | {p95} | "
            f"{r['worst_backlog']:.0f} |"
        )
    return "\n".join(lines)


def cases(quick: bool) -> list[tuple[str, pd.DataFrame, ScalingPolicy, Any, Any]]:
    out: list[tuple[str, pd.DataFrame, ScalingPolicy, Any, Any]] = []
    frame = read_metrics_file(ROOT / "data/demo/metrics.csv.gz")
    for pol in load_policies(ROOT / "data/demo/policies.yaml"):
        if pol.shared is not None:  # the shared pool is scored per queue: docs/shared-pools.md
            continue
        rows_q = frame.loc[frame["queue"] == pol.queue].reset_index(drop=True)
        out.append((f"demo/{pol.name}", rows_q, pol, None, None))
    taylor = taylor_rows()
    weeks = [77] if quick else [49, 77]
    for d in weeks:
        start = TAYLOR_START + pd.Timedelta(days=d)
        label = f"taylor week of {start:%d %b}"
        out.append((label, taylor, taylor_policy(), start, start + pd.Timedelta(days=7)))
    elec, years = elec_equip_rows()
    out.append(("elec_equip 2014-15", elec, elec_policy(), None, None))
    if not quick:
        crash = years.index(2008)
        out.append(
            (
                "elec_equip 2008-09",
                elec,
                elec_policy(),
                ELEC_DAY0 + pd.Timedelta(days=crash),
                ELEC_DAY0 + pd.Timedelta(days=crash + 2),
            )
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--figures", type=Path, help="write one PNG per backtest here")
    ap.add_argument("--json", type=Path, help="write the summary rows as JSON here")
    ap.add_argument("--quick", action="store_true", help="one Taylor week, one elec period")
    args = ap.parse_args()
    table: list[dict[str, Any]] = []
    for label, rows, pol, start, end in cases(args.quick):
        t0 = time.perf_counter()
        shipped = run_backtest(rows, pol, start=start, end=end)
        tuned = run_backtest(rows, calm(pol, rows, start or shipped.start), start=start, end=end)
        pooled = run_backtest(
            rows, calm(pol, rows, start or shipped.start, "pooled"), start=start, end=end
        )
        table += rows_of(label, "shipped", shipped)
        table += rows_of(label, "calm", tuned, only=FORECAST_DRIVEN, baseline=shipped)
        table += rows_of(label, "pooled", pooled, only=FORECAST_DRIVEN, baseline=shipped)
        print(f"{label}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        if args.figures:
            name = label.replace("/", "-").replace(" ", "_")
            pooled.figure(args.figures / f"backtest-{name}.png")
    print(markdown(table))
    if args.json:
        args.json.write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
