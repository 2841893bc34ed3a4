"""Synthetic metric rows and policies with known answers for the backtest tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from capplan_core.policy import ScalingPolicy, parse_policies

T0 = pd.Timestamp("2026-03-01T00:00:00Z")


def rows(
    days: float,
    rate: Callable[[pd.DatetimeIndex], np.ndarray],
    *,
    service_rate: float = 1.0,
    workers: int = 5,
    freq: str = "5min",
) -> pd.DataFrame:
    idx = pd.date_range(T0, T0 + pd.Timedelta(days=days), freq=freq, inclusive="left")
    n = len(idx)
    return pd.DataFrame(
        {
            "timestamp": idx,
            "queue": "q",
            "arrival_rate": rate(idx),
            "service_rate": np.full(n, service_rate),
            "backlog": np.zeros(n),
            "workers": np.full(n, float(workers)),
            "service_time_scv": np.ones(n),
        }
    )


def constant(level: float) -> Callable[[pd.DatetimeIndex], np.ndarray]:
    return lambda idx: np.full(len(idx), level)


def daily_step(
    low: float, high: float, from_hour: int, to_hour: int
) -> Callable[[pd.DatetimeIndex], np.ndarray]:
    return lambda idx: np.where((idx.hour >= from_hour) & (idx.hour < to_hour), high, low)


def policy(**scaling: Any) -> ScalingPolicy:
    sc = {
        "min_workers": 1,
        "max_workers": 200,
        "max_step": 100,
        "cooldown_seconds": 300,
        "safety_margin": 0.0,
        "startup_seconds": 60,
    }
    sc.update(scaling)
    doc = {
        "name": "q",
        "queue": "q",
        "target": {"name": "w"},
        "slo": {"wait_p95_seconds": 30},
        "scaling": sc,
        "forecast": {
            "model": "seasonal_naive",
            "horizon_hours": 3,
            "interval_minutes": 15,
            "seasonality": ["daily"],
        },
        "cost": {"worker_hour": 1.0, "violation_hour": 10.0},
    }
    return parse_policies({"policies": [doc]})[0]
