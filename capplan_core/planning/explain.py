"""Tables that explain a plan, one row a person can check by hand.

Reading a window row left to right: the forecast demand at the sizing quantile, times
(1 + safety margin), is the arrival rate the queueing model (Erlang C / Allen–Cunneen) sizes
for; ``model_workers`` is what the bare demand needs, ``margin_workers`` what the margin adds,
``extra_workers`` what the decide loop added after simulation; ``constraints`` lists every
limit that moved the count (min, max, budget, hysteresis, cooldown, max step) and by how much;
``scheduled_workers`` is the replica count commanded at the window start, and ``steps`` the
actions taken for this window.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from capplan_core.planning.planner import PlannedStep, PlanProposal

WINDOW_COLUMNS = [
    "window_start", "demand_per_s", "demand_quantile", "margin", "arrival_rate_per_s",
    "model_workers", "margin_workers", "extra_workers", "wanted_workers", "needed_workers",
    "constraints", "scheduled_workers", "steps",
]
STEP_COLUMNS = [
    "execute_at", "from_workers", "to_workers", "window_start", "demand_per_s",
    "demand_quantile", "model_workers", "margin_workers", "extra_workers", "constraints",
]


def _t(t: Any) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S") if isinstance(t, datetime) else str(t)


def _constraint_text(c: dict[str, Any]) -> str:
    change = c["change"]
    if c.get("unit") == "s":
        return f"{c['constraint']} {change:+.0f} s"
    return f"{c['constraint']} {int(change):+d}"


def _step_text(s: PlannedStep) -> str:
    return f"{s.execute_at:%H:%M:%S} {s.from_workers}→{s.to_workers}"


def explanation_rows(proposal: PlanProposal) -> list[dict[str, Any]]:
    """One row per planning window, columns ``WINDOW_COLUMNS`` (strings and numbers only)."""
    by_window: dict[int, list[PlannedStep]] = {}
    for s in proposal.steps:
        by_window.setdefault(int(s.explanation["window_index"]), []).append(s)
    rows = []
    for i, w in enumerate(proposal.windows):
        rows.append({
            "window_start": _t(w["window_start"]),
            "demand_per_s": round(float(w["demand_per_s"]), 6),
            "demand_quantile": w["demand_quantile"],
            "margin": f"{w['safety_margin']:.0%}",
            "arrival_rate_per_s": round(float(w["arrival_rate_per_s"]), 6),
            "model_workers": w["model_workers"],
            "margin_workers": w["margin_workers"],
            "extra_workers": w["extra_workers"],
            "wanted_workers": w["wanted_workers"],
            "needed_workers": w["needed_workers"],
            "constraints": w["constraints"],
            "scheduled_workers": w["scheduled_workers"],
            "steps": ", ".join(_step_text(s) for s in by_window.get(i, [])),
        })
    return rows


def step_rows(proposal: PlanProposal) -> list[dict[str, Any]]:
    """One row per scaling step, columns ``STEP_COLUMNS``."""
    rows = []
    for s in proposal.steps:
        e = s.explanation
        rows.append({
            "execute_at": _t(s.execute_at), "from_workers": s.from_workers,
            "to_workers": s.to_workers, "window_start": _t(e["window_start"]),
            "demand_per_s": round(float(e["demand_per_s"]), 6),
            "demand_quantile": e["demand_quantile"], "model_workers": e["model_workers"],
            "margin_workers": e["margin_workers"], "extra_workers": e["extra_workers"],
            "constraints": "; ".join(_constraint_text(c) for c in e["constraints"]),
        })
    return rows
