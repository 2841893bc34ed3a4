"""Cost of a plan: worker-hours and money, against constant and peak-static provisioning.

Worker-hours integrate the commanded replica count over the forecast horizon
[first window start, last window end). The expected cost of SLO violations is filled in once
the Monte Carlo simulation has run (``with_violation_cost``): each window contributes
P(window fails the SLO) × window length (h) × ``violation_hour`` — the expected hours in
violation priced at the policy's rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np


def worker_hours(
    starts: Sequence[datetime],
    window_s: float,
    initial_workers: int,
    steps: Sequence[tuple[datetime, int]],
) -> float:
    """∫ replicas dt over the horizon, in worker-hours; ``steps`` are (execute_at, workers)."""
    if not starts:
        return 0.0
    t0, t_end = starts[0], starts[0] + timedelta(seconds=window_s * len(starts))
    workers, t, total_s = initial_workers, t0, 0.0
    for at, to in sorted(steps, key=lambda s: s[0]):
        if at <= t0:
            workers = to
            continue
        if at >= t_end:
            break
        total_s += workers * (at - t).total_seconds()
        workers, t = to, at
    total_s += workers * (t_end - t).total_seconds()
    return total_s / 3600.0


def plan_cost(
    *,
    starts: Sequence[datetime],
    window_s: float,
    current_workers: int,
    steps: Sequence[tuple[datetime, int]],
    peak_workers: int,
    worker_hour: float,
    violation_hour: float,
) -> dict[str, Any]:
    """Worker-hours and money of the plan, of keeping ``current_workers`` constant, and of
    static provisioning at ``peak_workers`` (the horizon's peak need)."""
    hours = window_s * len(starts) / 3600.0
    plan_wh = worker_hours(starts, window_s, current_workers, steps)
    current_wh = current_workers * hours
    static_wh = peak_workers * hours
    return {
        "horizon_hours": hours,
        "worker_hour_price": worker_hour,
        "violation_hour_price": violation_hour,
        "plan_worker_hours": plan_wh,
        "plan_cost": plan_wh * worker_hour,
        "current_worker_hours": current_wh,
        "current_cost": current_wh * worker_hour,
        "static_peak_workers": peak_workers,
        "static_peak_worker_hours": static_wh,
        "static_peak_cost": static_wh * worker_hour,
        "savings_vs_current": (current_wh - plan_wh) * worker_hour,
        "savings_vs_static_peak": (static_wh - plan_wh) * worker_hour,
        "expected_violation_cost": None,  # filled from the simulation (with_violation_cost)
        "net_cost": None,
    }


def violation_cost(
    window_failure_rate: Sequence[float] | np.ndarray, window_s: float, violation_hour: float
) -> float:
    """Expected SLO-violation cost: Σ_i P(window i fails) · window_s/3600 · violation_hour."""
    rates = np.asarray(window_failure_rate, dtype=float)
    if rates.size and (not np.all(np.isfinite(rates)) or rates.min() < 0 or rates.max() > 1):
        raise ValueError("window_failure_rate must hold probabilities in [0, 1]")
    if window_s <= 0:
        raise ValueError(f"window_s must be > 0 (got {window_s!r})")
    if violation_hour < 0:
        raise ValueError(f"violation_hour must be >= 0 (got {violation_hour!r})")
    return float(rates.sum() * window_s / 3600.0 * violation_hour)


def net_cost(cost: dict[str, Any]) -> float | None:
    """Plan money plus expected violation cost; None until the violation cost is known."""
    v = cost.get("expected_violation_cost")
    return None if v is None else float(cost["plan_cost"]) + float(v)


def with_violation_cost(
    cost: dict[str, Any],
    window_failure_rate: Sequence[float] | np.ndarray,
    window_s: float,
) -> dict[str, Any]:
    """A copy of ``cost`` with ``expected_violation_cost`` and ``net_cost`` filled in."""
    out = dict(cost)
    out["expected_violation_cost"] = violation_cost(
        window_failure_rate, window_s, float(cost["violation_hour_price"])
    )
    out["net_cost"] = net_cost(out)
    return out
