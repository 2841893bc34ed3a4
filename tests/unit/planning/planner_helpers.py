"""Shared builders for the planner tests (not a test module).

The SLO in these scenarios is ``max_utilization: 0.5`` with 1-s jobs and a 25 % margin, so a
window's need is worked out by hand: workers = ceil(demand · 1.25 / 0.5) = ceil(2.5 · demand).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from capplan_core.planning.planner import PlanInput, PlanProposal, plan_capacity
from capplan_core.policy import ScalingPolicy, parse_policies

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
WINDOW_S = 900.0


def policy(
    *,
    mode: str = "manual",
    slo: dict[str, Any] | None = None,
    cost: dict[str, Any] | None = None,
    **scaling: Any,
) -> ScalingPolicy:
    sc = {
        "min_workers": 1,
        "max_workers": 100,
        "max_step": 50,
        "cooldown_seconds": 300,
        "safety_margin": 0.25,
        "startup_seconds": 120,
        "scale_down_windows": 2,
        "scale_down_min_drop": 1,
        "auto_max_change": 100,
        "plan_expiry_seconds": 1800,
        "min_dwell_seconds": 0,  # the dwell has its own tests (test_calm_plans.py)
        "action_cost_worker_hours": 0,
    }  # so has the action cost (derived when unset)
    sc.update(scaling)
    doc = {
        "name": "emails",
        "queue": "emails",
        "mode": mode,
        "target": {"name": "w"},
        "slo": slo or {"max_utilization": 0.5},
        "scaling": sc,
        "cost": cost or {"worker_hour": 0.5, "violation_hour": 100},
    }
    return parse_policies({"policies": [doc]})[0]


def starts(n: int, first: datetime = NOW) -> list[datetime]:
    return [first + timedelta(seconds=WINDOW_S * i) for i in range(n)]


def plan(pol: ScalingPolicy, demand: list[float], current: int, **kw: Any) -> PlanProposal:
    inp = {
        "policy": pol,
        "now": NOW,
        "current_workers": current,
        "current_backlog": 0.0,
        "mean_service_s": 1.0,
        "service_scv": 1.0,
        "window_starts": starts(len(demand)),
        "window_s": WINDOW_S,
        "demand_per_s": np.asarray(demand, dtype=float),
    }
    inp.update(kw)
    return plan_capacity(PlanInput(**inp))


def moves(p: PlanProposal) -> list[tuple[datetime, int, int]]:
    return [(s.execute_at, s.from_workers, s.to_workers) for s in p.steps]


def constraints(step_or_window: Any) -> dict[str, Any]:
    """{constraint: change} of a step (the last change per name wins)."""
    return {c["constraint"]: c["change"] for c in step_or_window.explanation["constraints"]}
