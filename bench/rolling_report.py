"""Tables from bench/bench_rolling.py's JSON lines: every week, and the worst week per series.

Run:  .venv/bin/python bench/rolling_report.py results.jsonl [more.jsonl ...]

The worst week of a series is its lowest predictive attainment (ties: the highest x oracle).
"Goal" is issue 22's: >= 99 % of windows with demand met, <= 1.10x the oracle's worker-hours
(<= 1.05x the rate oracle for pools under 20 workers), the count changed in <= 30 % of
windows or no more often than the oracle's, better than reactive on attainment and
worker-hours.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GOAL_MET, GOAL_X, GOAL_X_RATE, CALM = 0.99, 1.10, 1.05, 0.30
SMALL_POOL = 20


def load(paths: list[Path]) -> list[dict[str, Any]]:
    """The weeks of every file, in series then week order, each week's strategy chosen again
    from the previous week of its series (a series may have been split over processes)."""
    from bench.bench_rolling import choose

    rows = [json.loads(line) for p in paths for line in p.read_text().splitlines() if line]
    order = list(dict.fromkeys(r["series"] for r in rows))
    rows.sort(key=lambda r: (order.index(r["series"]), r["week"]))
    prev: dict[str, dict[str, Any]] = {}
    for r in rows:
        r["chosen"], r["why"] = choose(prev.get(r["series"]))
        prev[r["series"]] = r
    # a week backtested only as evidence for the first scored one (bench_rolling --evidence)
    return [r for r in rows if r["split"] != "evidence"]


def auto_rank(r: dict[str, Any]) -> tuple[float, float]:
    """Worst first: what ``scaling.strategy: auto`` (the week's chosen strategy) met, then
    its cost."""
    c = r[r["chosen"]]
    return (c["attainment"], -c["x_oracle"])


def goal(r: dict[str, Any], name: str) -> str:
    s, react = r[name], r["reactive"]
    small = r["oracle_mean_workers"] < SMALL_POOL
    cost_ok = s["x_rate_oracle"] <= GOAL_X_RATE if small else s["x_oracle"] <= GOAL_X
    calm_ok = s["changes"] <= max(CALM, r["oracle"]["changes"])
    beats = s["attainment"] >= react["attainment"] and s["worker_hours"] < react["worker_hours"]
    misses = [
        w
        for w, ok in (
            ("SLO", s["attainment"] >= GOAL_MET),
            ("cost", cost_ok),
            ("calm", calm_ok),
            ("vs reactive", beats),
        )
        if not ok
    ]
    return "met" if not misses else "not: " + ", ".join(misses)


def week_line(r: dict[str, Any], name: str, label: str | None = None) -> str:
    s = r[name]
    return (
        f"| {r['series']} | {r['week']} | {r['split']} | {label or name} | "
        f"{s['attainment']:.1%} | "
        f"{s['x_oracle']:.3f} | {s['x_rate_oracle']:.3f} | {s['changes']:.0%} "
        f"({r['oracle']['changes']:.0%}) | {r['reactive']['attainment']:.1%} / "
        f"{r['reactive']['x_oracle']:.3f} | {s['x_reactive']:.3f} | {goal(r, name)} |"
    )


HEAD = (
    "| series | week | split | strategy | SLO met | x oracle | x rate oracle | changed "
    "(oracle) | reactive met / x oracle | x reactive | goal |\n" + "|---" * 11 + "|"
)


def tables(rows: list[dict[str, Any]]) -> str:
    out = ["### Every week (predictive, and the strategy the previous week chose)", "", HEAD]
    for r in rows:
        out.append(week_line(r, "predictive"))
        if r["chosen"] != "predictive":
            out.append(week_line(r, r["chosen"]) + f" chosen: {r['why']} |")
    out += ["", "### Worst week per series", "", HEAD]
    for series in dict.fromkeys(r["series"] for r in rows):
        mine = [r for r in rows if r["series"] == series]
        worst = min(mine, key=auto_rank)
        out.append(week_line(worst, worst["chosen"], f"auto ({worst['chosen']})"))
        for name in ("predictive", "hybrid"):
            worst = min(mine, key=lambda r: (r[name]["attainment"], -r[name]["x_oracle"]))
            out.append(week_line(worst, name))
    out += [
        "",
        "### Calibration of P(met) (predictive, all weeks of a series)",
        "",
        "| series | windows | mean P(met) | observed | Brier | over-confident bins "
        "| switch days: P / observed | steady days: P / observed |",
        "|---" * 8 + "|",
    ]
    for series in dict.fromkeys(r["series"] for r in rows):
        mine = [r["calibration"] for r in rows if r["series"] == series]
        n = sum(b["windows"] for c in mine for b in c["bins"])
        mp = sum((c["mean_p_met"] or 0) * sum(b["windows"] for b in c["bins"]) for c in mine)
        ob = sum((c["observed"] or 0) * sum(b["windows"] for b in c["bins"]) for c in mine)
        br = sum((c["brier"] or 0) * sum(b["windows"] for b in c["bins"]) for c in mine)
        over = sum(1 for c in mine for b in c["bins"] if b["overconfident"])

        def regime(name: str, mine: list[dict[str, Any]] = mine) -> str:
            parts = [c["per_regime"][name] for c in mine if name in c["per_regime"]]
            w = sum(p["windows"] for p in parts)
            if not w:
                return "-"
            return (
                f"{sum(p['mean_p_met'] * p['windows'] for p in parts) / w:.3f} / "
                f"{sum(p['observed'] * p['windows'] for p in parts) / w:.3f} ({w})"
            )

        out.append(
            f"| {series} | {n} | {mp / max(n, 1):.4f} | {ob / max(n, 1):.4f} | "
            f"{br / max(n, 1):.4f} | {over} | {regime('switch')} | {regime('steady')} |"
        )
    return "\n".join(out)


def readme_table(rows: list[dict[str, Any]]) -> str:
    """One line per series: every week under ``auto`` (the default: the strategy the previous
    week chose), then auto's worst week, with predictive's worst beside it."""
    out = [
        "| series | weeks | auto (the default), every week: SLO met / x oracle | auto's worst "
        "week: strategy, SLO met, x oracle, x rate oracle, changed (oracle) | reactive that "
        "week | predictive's worst week | goal (auto's worst week) |",
        "|---" * 7 + "|",
    ]
    for series in dict.fromkeys(r["series"] for r in rows):
        mine = [r for r in rows if r["series"] == series]
        weeks = ", ".join(
            f"{r[r['chosen']]['attainment']:.1%} / {r[r['chosen']]['x_oracle']:.3f}"
            + ("" if r["chosen"] == "predictive" else " (h)")
            for r in mine
        )
        w = min(mine, key=auto_rank)
        c = w[w["chosen"]]
        pw = min(mine, key=lambda r: (r["predictive"]["attainment"], -r["predictive"]["x_oracle"]))
        out.append(
            f"| {series} | {len(mine)} | {weeks} | {w['week']}: {w['chosen']}, "
            f"{c['attainment']:.1%}, {c['x_oracle']:.3f}x, {c['x_rate_oracle']:.3f}x, "
            f"{c['changes']:.0%} ({w['oracle']['changes']:.0%}) | "
            f"{w['reactive']['attainment']:.1%} at {w['reactive']['x_oracle']:.3f}x | "
            f"{pw['week']}: {pw['predictive']['attainment']:.1%} at "
            f"{pw['predictive']['x_oracle']:.3f}x | {goal(w, w['chosen'])} |"
        )
    return "\n".join(out)


def main() -> None:
    rows = load([Path(p) for p in sys.argv[1:]])
    print(tables(rows))
    print()
    print(readme_table(rows))


if __name__ == "__main__":
    main()
