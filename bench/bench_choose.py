"""What ``choose-strategy`` costs a day per queue, and what keeping its week as days changes.

Run:  nice -n 10 .venv/bin/python bench/bench_choose.py [--series demo,calls,taylor]
          [--out choose.jsonl]

The daily run chose each ``auto`` queue's strategy by replaying its whole last week; it now
keeps the week as day-long stretches in the stored choice and replays only the day since
(flows/choose_strategy.py, capplan_core/backtest/evidence.py). For each series' week this
benchmark, in one process:

- **baseline**: one backtest of the whole week (what every daily run cost before);
- **incremental**: the same week as seven one-day backtests, each with only the history
  before it (what seven daily runs replay); one of them is a day's cost now.

A day that cannot be replayed (no metrics in it) is retried with the next, as the flow's next
run would. It prints the seconds of each, the ratio *baseline / one day* (the daily saving
per queue), and both evidences' figures: attainment and worker-hours of predictive and
hybrid, and the strategy each chooses. The two differ only where a day's replay starts from the pool the
metrics saw at its start instead of the replay's own pool the moment before.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_rolling import WEEK, cases  # noqa: E402
from capplan_core.backtest.evidence import evidence_days  # noqa: E402
from capplan_core.backtest.run import BacktestError, run_backtest  # noqa: E402
from capplan_core.planning.strategy_choice import choose_strategy  # noqa: E402
from capplan_core.planning.strategy_evidence import (  # noqa: E402
    StrategyEvidence,
    evidence_over,
)

DAY = pd.Timedelta(days=1)


def _figures(p: StrategyEvidence, h: StrategyEvidence) -> dict[str, Any]:
    chosen, _ = choose_strategy(p, h)
    return {
        "predictive": {"attainment": p.attainment, "worker_hours": p.worker_hours},
        "hybrid": {"attainment": h.attainment, "worker_hours": h.worker_hours},
        "chosen": chosen,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--series", default="demo,calls,taylor")
    ap.add_argument("--out", type=Path, default=Path("choose.jsonl"))
    args = ap.parse_args()
    wanted = {w.strip() for w in args.series.split(",") if w.strip()}
    with args.out.open("a") as out:
        for series, rows, pol, starts in cases(wanted):
            start = starts[0] if not series.startswith("taylor") else starts[1]
            last = pd.to_datetime(rows["timestamp"]).max()
            end = min(start + WEEK, last + pd.Timedelta(minutes=pol.forecast.interval_minutes))
            end = end.floor(f"{pol.forecast.interval_minutes}min")  # as bench_rolling's week
            t0 = time.perf_counter()
            week = evidence_days(run_backtest(rows, pol, start=start, end=end))
            whole_s = time.perf_counter() - t0
            day_s: list[float] = []
            days = []
            since = start  # as the flow: a day that cannot be replayed is retried with the next
            failed = []
            for k in range(7):
                t1 = time.perf_counter()
                try:
                    r = run_backtest(rows, pol, start=since, end=min(end, start + (k + 1) * DAY))
                except BacktestError as err:
                    failed.append(str(err))
                    continue
                finally:
                    day_s.append(time.perf_counter() - t1)
                days += evidence_days(r)
                since = start + (k + 1) * DAY
            one_day_s = sum(day_s) / len(day_s)
            row = {
                "series": series,
                "week": f"{start:%Y-%m-%d}",
                "baseline_week_s": round(whole_s, 2),
                "one_day_s": round(one_day_s, 2),
                "ratio": round(whole_s / one_day_s, 2),
                "days_retried": failed,
                "week_replay": _figures(
                    evidence_over(week, "predictive"), evidence_over(week, "hybrid")
                ),
                "daily_replays": _figures(
                    evidence_over(days, "predictive"), evidence_over(days, "hybrid")
                ),
            }
            out.write(json.dumps(row) + "\n")
            out.flush()
            w, d = row["week_replay"], row["daily_replays"]
            print(
                f"{series} {row['week']}: week {whole_s:.0f} s, a day {one_day_s:.1f} s, "
                f"ratio {row['ratio']:.1f}x | predictive {w['predictive']['attainment']:.2%} "
                f"vs {d['predictive']['attainment']:.2%}, "
                f"{d['predictive']['worker_hours'] / w['predictive']['worker_hours']:.4f}x wh; "
                f"hybrid {w['hybrid']['attainment']:.2%} vs {d['hybrid']['attainment']:.2%}, "
                f"{d['hybrid']['worker_hours'] / w['hybrid']['worker_hours']:.4f}x wh; "
                f"chosen {w['chosen']} vs {d['chosen']}",
                flush=True,
            )


if __name__ == "__main__":
    main()
