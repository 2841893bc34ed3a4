"""Synthetic queue traffic with known structure (jobs/s)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def series(values: np.ndarray, step: str = "15min", start: str = "2026-01-05") -> pd.Series:
    idx = pd.date_range(start, periods=len(values), freq=step, tz="UTC")
    return pd.Series(np.asarray(values, dtype=float), index=idx, name="arrival_rate")


def seasonal_rates(days: int, *, weekly: bool, step_min: int = 15, seed: int = 1) -> pd.Series:
    """Poisson-noisy traffic: a daily wave, optionally weekends at 60%."""
    per_day = 24 * 60 // step_min
    t = np.arange(days * per_day)
    hod = (t % per_day) / per_day
    dow = (t // per_day) % 7
    lam = 20 * (1 + 0.8 * np.sin(2 * np.pi * (hod - 0.3))) + 2
    if weekly:
        lam = lam * np.where(dow >= 5, 0.5, 1.0)
    rng = np.random.default_rng(seed)
    window_s = step_min * 60
    return series(rng.poisson(lam * window_s) / window_s, f"{step_min}min")
