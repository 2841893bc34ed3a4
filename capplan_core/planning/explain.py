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
from typing import TYPE_CHECKING, Any

from capplan_core.planning.constraints import constraint_text
from capplan_core.planning.stored_plan import StoredPlan

if TYPE_CHECKING:  # showing a stored plan never loads the planner (CLI start-up)
    from capplan_core.planning.planner import PlannedStep, PlanProposal

WINDOW_COLUMNS = [
    "window_start",
    "demand_per_s",
    "demand_quantile",
    "margin",
    "arrival_rate_per_s",
    "model_workers",
    "margin_workers",
    "extra_workers",
    "wanted_workers",
    "needed_workers",
    "constraints",
    "scheduled_workers",
    "steps",
]
STEP_COLUMNS = [
    "execute_at",
    "from_workers",
    "to_workers",
    "window_start",
    "demand_per_s",
    "demand_quantile",
    "model_workers",
    "margin_workers",
    "extra_workers",
    "constraints",
]


def _t(t: Any) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S") if isinstance(t, datetime) else str(t)


def _step_text(s: PlannedStep) -> str:
    return f"{s.execute_at:%H:%M:%S} {s.from_workers}→{s.to_workers}"


def explanation_rows(proposal: PlanProposal) -> list[dict[str, Any]]:
    """One row per planning window, columns ``WINDOW_COLUMNS`` (strings and numbers only)."""
    by_window: dict[int, list[PlannedStep]] = {}
    for s in proposal.steps:
        by_window.setdefault(int(s.explanation["window_index"]), []).append(s)
    rows = []
    for i, w in enumerate(proposal.windows):
        rows.append(
            {
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
            }
        )
    return rows


def step_rows(proposal: PlanProposal) -> list[dict[str, Any]]:
    """One row per scaling step, columns ``STEP_COLUMNS``."""
    rows = []
    for s in proposal.steps:
        e = s.explanation
        rows.append(
            {
                "execute_at": _t(s.execute_at),
                "from_workers": s.from_workers,
                "to_workers": s.to_workers,
                "window_start": _t(e["window_start"]),
                "demand_per_s": round(float(e["demand_per_s"]), 6),
                "demand_quantile": e["demand_quantile"],
                "model_workers": e["model_workers"],
                "margin_workers": e["margin_workers"],
                "extra_workers": e["extra_workers"],
                "constraints": "; ".join(constraint_text(c) for c in e["constraints"]),
            }
        )
    return rows


def stored_step_rows(plan: StoredPlan) -> list[dict[str, Any]]:
    """One row per stored step: its time and worker counts, then the scalar fields of its
    explanation, with the constraints as text (``max -2; cooldown +120 s``)."""
    rows = []
    for s in plan.steps:
        e = s.explanation or {}
        row: dict[str, Any] = {
            "execute_at": s.execute_at.isoformat(),
            "from_workers": s.from_workers,
            "to_workers": s.to_workers,
        }
        row.update({k: v for k, v in e.items() if k not in row and not isinstance(v, dict | list)})
        if e.get("constraints"):
            row["constraints"] = "; ".join(constraint_text(c) for c in e["constraints"])
        rows.append(row)
    return rows
