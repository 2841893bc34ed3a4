"""Rolling backtest (issue 22): every week of each series, fitted at each origin only on the
past, with a policy that states only the SLO and bounds; the worst week is the figure.

Run:  nice -n 10 .venv/bin/python bench/bench_rolling.py [--series taylor,calls,...]
          [--out results.jsonl] [--figures DIR] [--markdown]

Series (named with their sources in bench/real_series.py and bench/shapes.py):
- ``taylor`` (real): J. W. Taylor's half-hourly England & Wales demand, summer 2000
  (pmdarima), every week from Monday 19 June (two weeks of history) to Monday 21 August;
- ``elec`` (real, compressed): statsmodels' Eurostat elec_equip index, a year per day, every
  7-day week after the first;
- ``calls`` (synthetic, the held-out call centre's shape): weekdays 07:00-21:05, closed
  otherwise, 180-s calls, 80 % within 20 s; every week after the first;
- ``heatwave`` (Taylor's first 12 days, then +40 % peaks for 4 days): the two weeks after
  the 12 days of history;
- ``demo/<queue>``: the bundled demo's second week, its policies cut to SLO and bounds.

Tune/confirm split: the derived defaults' constants (planning/defaults.py: 5 minutes of the
pool per action, two windows of dwell, 0.99; pooled_sizing's floor factor 10) were chosen in
issue 15 on Taylor's weeks of 24 July and 21 August (the *tune* weeks, marked ``tune``);
every other week is a *confirm* week, on which nothing was chosen. The strategy of a week
(``chosen``) is picked from the previous week of the same series only (the rolling
evidence), by production's rule (``scaling.strategy: auto``, capplan_core/planning/
strategy_choice.py): hybrid when it met at least predictive's attainment there at no more
than 1 % more worker-hours, or predictive missed the 99 % goal and hybrid did not; else
predictive; a change from the previous week's strategy must clear a band of 0.5 % around
that 1 %. ``--evidence`` also backtests the week before a series' first scored week where
the series has a day of history before it (Taylor, the heatwave), as the daily choice would
have; that week (split ``evidence``) only chooses, it is never scored.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.real_series import ELEC_DAY0, TAYLOR_START, elec_equip_rows, taylor_rows  # noqa: E402
from bench.shapes import (  # noqa: E402
    CALL_START,
    call_centre_policy,
    call_centre_rows,
    heatwave_policy,
    heatwave_rows,
)
from capplan_core.backtest import run_backtest  # noqa: E402
from capplan_core.metrics.file_source import read_metrics_file  # noqa: E402
from capplan_core.planning.strategy_choice import (  # noqa: E402
    NO_EVIDENCE_HYBRID,
    choose_strategy,
)
from capplan_core.planning.strategy_evidence import StrategyEvidence  # noqa: E402
from capplan_core.policy import ScalingPolicy, load_policies, parse_policies  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WEEK = pd.Timedelta(days=7)
TUNE_WEEKS = {("taylor", "2000-07-24"), ("taylor", "2000-08-21")}


def minimal(doc: dict[str, Any]) -> ScalingPolicy:
    return parse_policies({"policies": [doc]})[0]


def taylor_minimal() -> ScalingPolicy:
    return heatwave_policy()


def elec_minimal() -> ScalingPolicy:
    return minimal(
        {
            "name": "elec",
            "queue": "elec",
            "target": {"name": "w"},
            "slo": {"wait_p95_seconds": 30},
            "scaling": {"min_workers": 2, "max_workers": 200, "startup_seconds": 60},
            "forecast": {"interval_minutes": 15},
        }
    )


def demo_minimal(pol: ScalingPolicy) -> ScalingPolicy:
    """The demo policy cut to its SLO terms, bounds, startup and forecast window."""
    slo = pol.slo.model_dump(exclude_none=True, exclude={"target_attainment", "attainment_mode"})
    sc = pol.scaling
    return minimal(
        {
            "name": pol.name,
            "queue": pol.queue,
            "target": {"name": "w"},
            "slo": slo,
            "scaling": {
                "min_workers": sc.min_workers,
                "max_workers": sc.max_workers,
                "startup_seconds": sc.startup_seconds,
            },
            "forecast": {
                "interval_minutes": pol.forecast.interval_minutes,
                "seasonality": list(pol.forecast.seasonality),
            },
        }
    )


Case = tuple[str, pd.DataFrame, ScalingPolicy, list[pd.Timestamp]]


def cases(wanted: set[str]) -> Iterator[Case]:
    if "taylor" in wanted:
        starts = [TAYLOR_START + WEEK * k for k in range(2, 12)]
        yield "taylor", taylor_rows(), taylor_minimal(), starts
    if "elec" in wanted:
        rows, _ = elec_equip_rows()
        days = int((pd.to_datetime(rows["timestamp"]).max() - ELEC_DAY0).days)
        # every 7-day week after the first, and the last part-week (6 days of 20)
        yield (
            "elec",
            rows,
            elec_minimal(),
            [ELEC_DAY0 + WEEK * k for k in range(1, (days + 6) // 7)],
        )
    if "calls" in wanted:
        yield (
            "calls",
            call_centre_rows(5),
            call_centre_policy(),
            [CALL_START + WEEK * k for k in range(1, 5)],
        )
    if "heatwave" in wanted:
        yield (
            "heatwave",
            heatwave_rows(),
            heatwave_policy(),
            [TAYLOR_START + pd.Timedelta(days=12) + WEEK * k for k in range(2)],
        )
    if any(w.startswith("demo") for w in wanted):
        frame = read_metrics_file(ROOT / "data/demo/metrics.csv.gz")
        end = pd.to_datetime(frame["timestamp"]).max().floor("15min")
        for pol in load_policies(ROOT / "data/demo/policies.yaml"):
            if pol.shared is not None:  # scored per queue: docs/shared-pools.md
                continue
            if "demo" in wanted or f"demo/{pol.name}" in wanted:
                rows = frame.loc[frame["queue"] == pol.queue].reset_index(drop=True)
                yield f"demo/{pol.name}", rows, demo_minimal(pol), [end - WEEK]


def week_row(series: str, start: pd.Timestamp, r: Any) -> dict[str, Any]:
    d = r.to_dict()
    s = d["strategies"]
    react = s["reactive"]

    def strat(name: str) -> dict[str, Any]:
        x = s[name]
        return {
            "attainment": x["slo_attainment"],
            "x_oracle": x["worker_hours_vs_oracle"],
            "x_rate_oracle": x["worker_hours_vs_rate_oracle"],
            "changes": x["changes_per_window"],
            "actions_per_day": x["actions_per_day"],
            "worker_hours": x["worker_hours"],
            "missed": x["windows_missed"],
            "x_reactive": x["worker_hours"] / react["worker_hours"]
            if react["worker_hours"]
            else None,
        }

    oracle_mean = float(r.workers["oracle"].mean())
    return {
        "series": series,
        "week": f"{start:%Y-%m-%d}",
        "split": "tune" if (series, f"{start:%Y-%m-%d}") in TUNE_WEEKS else "confirm",
        "windows": len(d["windows"]),
        "windows_with_demand": s["predictive"]["windows_with_demand"],
        "oracle_mean_workers": oracle_mean,
        "runtime_s": d["runtime_s"],
        **{n: strat(n) for n in ("predictive", "hybrid", "reactive", "oracle", "rate_oracle")},
        "calibration": d["calibration"],
        "models": sorted({p.model for p in r.plan_log}),
    }


def choose(prev: dict[str, Any] | None) -> tuple[str, str]:
    """The strategy for a week from the previous week's evidence: production's rule
    (capplan_core/planning/strategy_choice.py, what ``scaling.strategy: auto`` runs), with
    the previous week's own strategy as the one a change must clear the band from."""
    if prev is None:  # the backtest's hybrid is a KEDA ScaledObject: a target that reacts
        return "hybrid", f"no earlier week: {NO_EVIDENCE_HYBRID}"

    def evidence(name: str) -> StrategyEvidence:
        x = prev[name]
        return StrategyEvidence(x["attainment"], x["worker_hours"], x["x_oracle"])

    return choose_strategy(evidence("predictive"), evidence("hybrid"), prev.get("chosen"))


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--series", default="taylor,elec,calls,heatwave,demo")
    ap.add_argument("--out", type=Path, default=Path("rolling.jsonl"))
    ap.add_argument("--figures", type=Path)
    ap.add_argument(
        "--evidence",
        action="store_true",
        help="also backtest the week before each series' first week, where its history "
        "allows (a day before it), as the evidence production's daily choice would have had; "
        "written with split 'evidence', never scored in the tables",
    )
    ap.add_argument(
        "--weeks",
        default=":",
        help="a slice of each series' weeks, e.g. 5: (to split a long series over processes)",
    )
    ap.add_argument(
        "--target-attainment",
        type=float,
        help="an experiment: every policy's slo.target_attainment set to this (pooled); "
        "the figures are then not the derived defaults'",
    )
    args = ap.parse_args()
    wanted = {w.strip() for w in args.series.split(",") if w.strip()}
    with args.out.open("a") as out:
        a, _, b = args.weeks.partition(":")
        chosen = slice(int(a) if a else None, int(b) if b else None)
        for series, rows, pol, starts in cases(wanted):
            if args.target_attainment is not None:
                slo = {"target_attainment": args.target_attainment, "attainment_mode": "pooled"}
                pol = pol.model_copy(update={"slo": pol.slo.model_copy(update=slo)})
            prev = None
            first = pd.to_datetime(rows["timestamp"]).min()
            before = starts[0] - WEEK
            if args.evidence and before - pd.Timedelta(days=1) >= first:
                r = run_backtest(rows, pol, start=before, end=starts[0])
                prev = week_row(series, before, r) | {"split": "evidence"}
                prev["chosen"], prev["why"] = choose(None)
                out.write(json.dumps(prev) + "\n")
                out.flush()
                print(f"{series} {prev['week']}: evidence week written", file=sys.stderr)
            for start in starts[chosen]:
                t0 = time.perf_counter()
                last = pd.to_datetime(rows["timestamp"]).max()
                stop = min(start + WEEK, last + pd.Timedelta(minutes=pol.forecast.interval_minutes))
                r = run_backtest(rows, pol, start=start, end=stop)
                row = week_row(series, start, r)
                row["chosen"], row["why"] = choose(prev)
                prev = row
                out.write(json.dumps(row) + "\n")
                out.flush()
                p = row["predictive"]
                print(
                    f"{series} {row['week']}: predictive {p['attainment']:.1%} "
                    f"{p['x_oracle']:.3f}x oracle {p['x_rate_oracle']:.3f}x rate "
                    f"{p['changes']:.0%} changed; hybrid {row['hybrid']['attainment']:.1%} "
                    f"{row['hybrid']['x_oracle']:.3f}x; reactive "
                    f"{row['reactive']['attainment']:.1%} "
                    f"{row['reactive']['x_oracle']:.3f}x "
                    f"({time.perf_counter() - t0:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
                if args.figures:
                    name = f"{series.replace('/', '-')}-{row['week']}"
                    r.figure(args.figures / f"rolling-{name}.png")


if __name__ == "__main__":
    main()
