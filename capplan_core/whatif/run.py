"""``run_what_if``: plan and simulate a changed scenario beside the unchanged one.

Both sides use the same cleaned history, the same forecast (the changed side's demand is
transformed by the scenario) and the same pool state, and go through the production
``plan_and_prove`` (plan + Monte Carlo + decide, re-planning until confident). Entry point
for the ``what-if`` flow and CLI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from capplan_core.forecast import ForecastResult, forecast_queue
from capplan_core.planning.cost import with_violation_cost
from capplan_core.planning.pool_state import QueueState, pool_state
from capplan_core.planning.window_sizing import sizing_quantile
from capplan_core.policy import ScalingPolicy
from capplan_core.quality.clean import clean_queue
from capplan_core.simulation import INTERACTIVE_JOB_BUDGET, simulate
from capplan_core.utc import utc_timestamp
from capplan_core.whatif.scenario import (
    WhatIfError,
    WhatIfScenario,
    changed_forecast,
    changed_policy,
    horizon_policy,
)

if TYPE_CHECKING:  # decide imports the simulation engine: loaded when first used
    from capplan_core.planning.decide import Decision


@dataclass(frozen=True)
class WhatIfSide:
    """One side's inputs: policy, forecast, pool state."""

    policy: ScalingPolicy
    forecast: ForecastResult
    state: QueueState


@dataclass(frozen=True)
class WhatIfInputs:
    baseline: WhatIfSide
    scenario: WhatIfSide
    as_of: pd.Timestamp


def what_if_inputs(
    history_rows: pd.DataFrame,
    policy: ScalingPolicy,
    scenario: WhatIfScenario,
    *,
    as_of: datetime | pd.Timestamp,
) -> WhatIfInputs:
    """Clean, read the state, forecast once, and derive both sides' inputs.

    Raises:
        WhatIfError: the scenario names another policy, the policy is a shared pool, or the
            queue has no usable metrics.
    """
    if scenario.policy != policy.name:
        raise WhatIfError(
            f"policy: scenario is for {scenario.policy!r}, got policy {policy.name!r}"
        )
    if policy.shared is not None:
        raise WhatIfError(
            f"policy: {policy.name!r} is a shared pool ({', '.join(policy.served_queues)}); "
            "what-if plans one queue: use `capplan plan --policy FILE` on a changed copy"
        )
    now = utc_timestamp(as_of)
    base_pol = horizon_policy(policy, scenario)
    interval_s = policy.forecast.interval_minutes * 60.0
    clean = clean_queue(
        history_rows,
        queue=policy.queue,
        interval_s=interval_s,
        now=now.to_pydatetime(),
        exclude_before=policy.exclude_before,
    )
    if clean.empty:
        raise WhatIfError(f"queue {policy.queue!r} has no usable metrics before {now.isoformat()}")
    state = pool_state(clean)
    fc = forecast_queue(
        clean.series["arrival_rate"],
        base_pol.forecast,
        queue=policy.queue,
        exclude=clean.series["outlier"].astype(bool),
        start=now.floor(pd.Timedelta(seconds=interval_s)),
    )
    new_pol = changed_policy(policy, scenario)
    new_state = (
        state
        if scenario.workers is None
        else QueueState(
            scenario.workers, state.current_backlog, state.mean_service_s, state.service_scv
        )
    )
    return WhatIfInputs(
        WhatIfSide(base_pol, fc, state),
        WhatIfSide(new_pol, changed_forecast(fc, scenario, now), new_state),
        now,
    )


def _summary(side: WhatIfSide, d: Decision) -> dict[str, Any]:
    sim, p = d.simulation, d.proposal
    cost = with_violation_cost(p.cost, sim.window_failure_rate, side.forecast.interval_s)
    demand = side.forecast.quantile(sizing_quantile(side.policy))
    return {
        "slo_attainment": float(sim.slo_achievement_rate),
        "confidence": float(d.confidence),
        "slo_achievable": bool(d.slo_achievable),
        "wait_p95_s": _num(sim.p95_wait_s),
        "max_backlog": _num(sim.max_backlog),
        "current_workers": int(side.state.current_workers),
        "target_workers": int(p.target_workers),
        "peak_demand_per_s": float(np.max(demand)) if len(demand) else 0.0,
        "worker_hours": float(cost["plan_worker_hours"]),
        "cost": float(cost["plan_cost"]),
        "expected_violation_cost": _num(cost["expected_violation_cost"]),
        "net_cost": _num(cost["net_cost"]),
        "steps": [
            {
                "execute_at": s.execute_at.isoformat(),
                "from_workers": s.from_workers,
                "to_workers": s.to_workers,
            }
            for s in p.steps
        ],
        "reasons": list(d.reasons),
        "engine": sim.engine,
        "approximate": bool(sim.approximate),
    }


def _num(v: Any) -> float | None:
    return None if v is None or not np.isfinite(float(v)) else float(v)


TABLE_ROWS = (
    "slo_attainment",
    "wait_p95_s",
    "max_backlog",
    "current_workers",
    "target_workers",
    "peak_demand_per_s",
    "worker_hours",
    "cost",
    "expected_violation_cost",
    "net_cost",
    "slo_achievable",
)


@dataclass(frozen=True)
class WhatIfResult:
    """Both sides' outcomes; ``table()`` lays them side by side."""

    policy: str
    queue: str
    as_of: pd.Timestamp
    scenario: WhatIfScenario
    baseline: dict[str, Any]
    changed: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def table(self) -> dict[str, Any]:
        """{"columns": [...], "rows": [{metric, baseline, scenario, change}]}."""
        rows = []
        for key in TABLE_ROWS:
            a, b = self.baseline.get(key), self.changed.get(key)
            change = (
                (b - a)
                if isinstance(a, int | float)
                and isinstance(b, int | float)
                and not isinstance(a, bool)
                else None
            )
            rows.append({"metric": key, "baseline": a, "scenario": b, "change": change})
        return {"columns": ["metric", "baseline", "scenario", "change"], "rows": rows}

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "queue": self.queue,
            "as_of": self.as_of.isoformat(),
            "scenario": self.scenario.model_dump(mode="json"),
            "baseline": self.baseline,
            "scenario_result": self.changed,
            "table": self.table(),
            "notes": self.notes,
        }


def run_what_if(
    history_rows: pd.DataFrame,
    policy: ScalingPolicy,
    scenario: WhatIfScenario,
    *,
    as_of: datetime | pd.Timestamp,
) -> WhatIfResult:
    """Plan + simulate the unchanged and the changed scenario as of ``as_of``.

    Raises:
        WhatIfError: scenario/policy mismatch or no usable metrics (named).
    """
    from capplan_core.planning.decide import plan_and_prove

    inp = what_if_inputs(history_rows, policy, scenario, as_of=as_of)
    now = inp.as_of.to_pydatetime()
    sides = []
    for side in (inp.baseline, inp.scenario):
        d = plan_and_prove(
            side.policy,
            side.forecast,
            side.state,
            now=now,
            simulate_fn=partial(simulate, job_budget=INTERACTIVE_JOB_BUDGET),
        )
        sides.append(_summary(side, d))
    notes = list(inp.scenario.forecast.notes[-1:])
    if scenario.workers is not None:
        notes.append(f"scenario holds a fixed {scenario.workers} workers (not planned)")
    return WhatIfResult(policy.name, policy.queue, inp.as_of, scenario, sides[0], sides[1], notes)
