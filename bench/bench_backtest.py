"""Backtest benchmark: predictive vs reactive, static peak and oracle (figures in docs/backtest.md).

Run:  .venv/bin/python bench/bench_backtest.py [--figures DIR] [--json FILE]

Data sets:
1. the bundled demo (data/demo/metrics.csv.gz, policies data/demo/policies.yaml), every
   policy, the last two days of the data (the backtest's default period);
2. a real demand series shipped inside statsmodels: ``statsmodels.datasets.elec_equip`` —
   Eurostat's monthly turnover index of electrical-equipment manufacturing in the euro area,
   1995-2015 (complete years), not seasonally adjusted (strong yearly pattern, the 2009 collapse). Time is
   compressed so that one year becomes one day (a month = 2 hours), interpolated to 15-min
   windows, and the index is rescaled to jobs/s (index 100 = 8 jobs/s); seeded Poisson count
   noise (what a 15-min rate measurement shows) is added. Jobs take 2 s (exponential), the SLO
   is a 30-s p95 wait — the demo's ``emails`` policy. Two periods: the last two "days"
   (2014-2015) and 2008-2009 (the collapse).
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

from capplan_core.backtest import BacktestResult, run_backtest  # noqa: E402
from capplan_core.metrics.file_source import read_metrics_file  # noqa: E402
from capplan_core.policy import ScalingPolicy, load_policies  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DAY0 = pd.Timestamp("2026-01-01T00:00:00Z")
JOBS_PER_S_AT_INDEX_100 = 8.0
SERVICE_RATE = 0.5


def elec_equip_rows(seed: int = 0) -> tuple[pd.DataFrame, list[int]]:
    """statsmodels' elec_equip, one year per day, as metric rows of queue ``elec``."""
    from statsmodels.datasets import elec_equip

    s = elec_equip.load_pandas().data.iloc[:, 0]
    years = sorted({t.year for t in s.index if (s.index.year == t.year).sum() == 12})
    values = np.concatenate([s[s.index.year == y].to_numpy() for y in years])
    # month m of day d sits at the middle of its 2-hour slot; 8 windows of 15 min per month
    month_mid = DAY0 + pd.to_timedelta(np.arange(len(values)) * 2 + 1, unit="h")
    idx = pd.date_range(DAY0, periods=len(values) * 8, freq="15min")
    centre = idx + pd.Timedelta(minutes=7.5)
    level = np.interp(centre.asi8, month_mid.asi8, values) / 100.0 * JOBS_PER_S_AT_INDEX_100
    rng = np.random.default_rng(seed)
    rate = rng.poisson(level * 900.0) / 900.0
    n = len(idx)
    return pd.DataFrame({
        "timestamp": idx, "queue": "elec", "arrival_rate": rate,
        "service_rate": np.full(n, SERVICE_RATE), "backlog": np.zeros(n),
        "workers": np.ceil(rate / SERVICE_RATE / 0.8), "service_time_scv": np.ones(n),
    }), years


def elec_policy() -> ScalingPolicy:
    demo = {p.name: p for p in load_policies(ROOT / "data/demo/policies.yaml")}["emails"]
    doc = demo.model_dump()
    doc.update(name="elec", queue="elec")
    doc["forecast"]["seasonality"] = ["daily"]
    return ScalingPolicy.model_validate(doc)


def lean(policy: ScalingPolicy) -> ScalingPolicy:
    """The policy without its cushions: no safety margin, sized to the median forecast."""
    doc = policy.model_dump()
    doc["scaling"]["safety_margin"] = 0.0
    doc["forecast"]["demand_quantile"] = 0.5
    return ScalingPolicy.model_validate(doc)


def row(label: str, r: BacktestResult, only: str | None = None,
        as_name: str | None = None) -> list[dict[str, Any]]:
    d = r.to_dict()
    out = []
    for name, s in d["strategies"].items():
        if only is not None and name != only:
            continue
        out.append({"data": label, "strategy": as_name or name, "windows": len(d["windows"]),
                    "slo_attainment": s["slo_attainment"], "worker_hours": s["worker_hours"],
                    "x_oracle": s["worker_hours_vs_oracle"], "wait_p95_s": s["wait_p95_s"],
                    "worst_backlog": s["worst_backlog"], "scaling_actions": s["scaling_actions"],
                    "runtime_s": d["runtime_s"]})
    return out


def markdown(rows: list[dict[str, Any]]) -> str:
    head = ("| data | strategy | SLO met | worker-h | x oracle | p95 wait s | worst backlog "
            "| actions | runtime s |")
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        p95 = "overload" if r["wait_p95_s"] is None else f"{r['wait_p95_s']:.1f}"
        lines.append(f"| {r['data']} | {r['strategy']} | {r['slo_attainment']:.1%} | "
                     f"{r['worker_hours']:.1f} | {r['x_oracle']:.3f} | {p95} | "
                     f"{r['worst_backlog']:.0f} | {r['scaling_actions']} | {r['runtime_s']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--figures", type=Path, help="write one PNG per backtest here")
    ap.add_argument("--json", type=Path, help="write the summary rows as JSON here")
    args = ap.parse_args()
    results: list[tuple[str, BacktestResult]] = []
    lean_results: list[tuple[str, BacktestResult]] = []
    frame = read_metrics_file(ROOT / "data/demo/metrics.csv.gz")
    for pol in load_policies(ROOT / "data/demo/policies.yaml"):
        rows_q = frame.loc[frame["queue"] == pol.queue].reset_index(drop=True)
        results.append((f"demo/{pol.name}", run_backtest(rows_q, pol)))
        if pol.name == "emails":
            lean_results.append((f"demo/{pol.name}", run_backtest(rows_q, lean(pol))))
    elec, years = elec_equip_rows()
    pol = elec_policy()
    crash = years.index(2008)
    periods = {"elec_equip 2014-15": (None, None),
               "elec_equip 2008-09": (DAY0 + pd.Timedelta(days=crash),
                                      DAY0 + pd.Timedelta(days=crash + 2))}
    for label, (start, end) in periods.items():
        results.append((label, run_backtest(elec, pol, start=start, end=end)))
    lean_results.append(("elec_equip 2014-15", run_backtest(elec, lean(pol))))
    rows: list[dict[str, Any]] = []
    for label, r in results:
        rows += row(label, r)
    for label, r in lean_results:
        rows += row(label, r, only="predictive", as_name="predictive (margin 0, q0.5)")
        if args.figures:
            r.figure(args.figures / f"backtest-{label.replace('/', '-').replace(' ', '_')}.png")
    print(markdown(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
