"""Synthetic series of the shapes issue 22's held-out data have (no real one is installed).

- ``call_centre_rows``: a bank's inbound calls, 5-minute rows, open on weekdays 07:00-21:05
  (local = UTC here), closed otherwise; 180-s calls; a morning ramp to ~10:00, a lunch dip, an
  afternoon shoulder and an evening tail; Mondays 15 % busier, Fridays 10 % quieter; a weekly
  level that wanders ±5 %; Poisson counts per 5 minutes. ``call_centre_policy`` states only the
  SLO (80 % answered within 20 s), bounds, a ``max_step`` for the pool's size and a startup
  time — the policy a user would write.
- ``heatwave_rows``: Taylor's real half-hourly demand (bench/real_series.py) for 12 days, then
  a four-day heatwave that lifts the daily peaks 40 % above anything in that history (the
  lift grows with the day's own shape: nights +8 %, peaks +40 %), then the series as it was.
  ``heatwave_policy`` is Taylor's policy with only the SLO and bounds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from capplan_core.policy import ScalingPolicy, parse_policies

CALL_START = pd.Timestamp("2026-01-05T00:00:00Z")  # a Monday
CALL_SECONDS = 180.0
OPEN_H, CLOSE_H = 7.0, 21.0 + 5.0 / 60.0


def _call_profile(hours: np.ndarray) -> np.ndarray:
    """Calls per second at the hour of day (open hours only), a weekday's shape."""
    ramp = np.clip((hours - OPEN_H) / 2.5, 0.0, 1.0)
    morning = 1.0 + 0.25 * np.exp(-0.5 * ((hours - 10.5) / 1.2) ** 2)
    lunch = 1.0 - 0.18 * np.exp(-0.5 * ((hours - 13.0) / 0.6) ** 2)
    evening = np.clip((CLOSE_H - hours) / 4.0, 0.25, 1.0)
    return 0.6 * ramp * morning * lunch * evening


def call_centre_rows(weeks: int = 4, seed: int = 0) -> pd.DataFrame:
    """5-minute metric rows of queue ``calls`` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range(CALL_START, periods=weeks * 7 * 288, freq="5min")
    hours = idx.hour + idx.minute / 60.0
    dow = idx.dayofweek
    open_ = (dow < 5) & (hours >= OPEN_H) & (hours < CLOSE_H)
    day_factor = np.select([dow == 0, dow == 4], [1.15, 0.9], 1.0)
    week_level = 1.0 + 0.05 * rng.standard_normal(weeks)
    level = week_level[(np.asarray((idx - CALL_START).days) // 7)]
    rate = np.where(open_, _call_profile(np.asarray(hours)) * day_factor * level, 0.0)
    counts = rng.poisson(rate * 300.0)
    n = len(idx)
    mu = 1.0 / CALL_SECONDS
    return pd.DataFrame(
        {
            "timestamp": idx,
            "queue": "calls",
            "arrival_rate": counts / 300.0,
            "service_rate": np.full(n, mu),
            "backlog": np.zeros(n),
            "workers": np.where(open_, np.ceil(rate / mu / 0.85), 0.0),
            "service_time_scv": np.ones(n),
        }
    )


def call_centre_policy() -> ScalingPolicy:
    """The SLO, bounds, a max_step and a startup time: nothing tuned."""
    doc = {
        "name": "calls",
        "queue": "calls",
        "target": {"name": "agents"},
        "slo": {"wait_seconds": 20, "wait_quantile": 0.8},
        "scaling": {"min_workers": 0, "max_workers": 400, "max_step": 60, "startup_seconds": 300},
        "forecast": {"interval_minutes": 15},
    }
    return parse_policies({"policies": [doc]})[0]


HEAT_FIRST_DAY = 12  # days of Taylor before the heatwave
HEAT_DAYS = 4
HEAT_LIFT = 0.40


def heatwave_rows() -> pd.DataFrame:
    """Taylor's first 12 days, a 4-day heatwave (+40 % at the peaks), then 12 more days."""
    from bench.real_series import taylor_rows

    rows = taylor_rows().iloc[: (HEAT_FIRST_DAY + HEAT_DAYS + 12) * 48].copy()
    rate = rows["arrival_rate"].to_numpy(dtype=float).copy()
    lo, hi = float(np.min(rate[: HEAT_FIRST_DAY * 48])), float(np.max(rate[: HEAT_FIRST_DAY * 48]))
    wave = slice(HEAT_FIRST_DAY * 48, (HEAT_FIRST_DAY + HEAT_DAYS) * 48)
    shape = (rate[wave] - lo) / max(hi - lo, 1e-9)  # 0 at the trough, 1 at the peak
    rate[wave] = rate[wave] * (1.0 + 0.08 + (HEAT_LIFT - 0.08) * np.clip(shape, 0.0, 1.0))
    rows["arrival_rate"] = rate
    rows["workers"] = np.ceil(rate / rows["service_rate"].to_numpy() / 0.8)
    return rows


def heatwave_policy() -> ScalingPolicy:
    doc = {
        "name": "taylor",
        "queue": "taylor",
        "target": {"name": "w"},
        "slo": {"wait_p95_seconds": 60},
        "scaling": {"min_workers": 1, "max_workers": 3000, "startup_seconds": 60},
        "forecast": {"interval_minutes": 30, "seasonality": ["daily", "weekly"]},
    }
    return parse_policies({"policies": [doc]})[0]
