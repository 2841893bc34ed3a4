"""Is P(met) calibrated? The reliability check of the probabilities the budget is spent on.

Pooled sizing spends the attainment target where P(window meets the SLO) is cheapest to buy
(planning/pooled_sizing.py), so that probability must mean what it says. For every scored
window of the backtest the plan in force (the last one made before the window starts) gave
the window's demand distribution; with the pool the strategy really had (the fewest ready
workers of the window) P(met) = F(λ_max(c)). Windows are binned by that probability and each
bin's mean P(met) is set against the share of its windows that really met the SLO: a
reliability diagram (Murphy & Winkler 1977; Bröcker & Smith 2007 for the binomial spread of
each bin). A bin whose observed share lies below its mean P(met) by more than
``Z`` binomial standard errors is over-confident. Per regime (switch days: Mondays and
Saturdays, the first day after a closed one; steady days) the same summary.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from capplan_core.backtest.predictive import PlanRecord
from capplan_core.planning.pooled_sizing import capacity_fn
from capplan_core.planning.window_sizing import slo_terms_from_policy
from capplan_core.policy import ScalingPolicy

EDGES = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 1.0 + 1e-9)
Z = 2.0


@dataclass(frozen=True)
class ReliabilityBin:
    lo: float
    hi: float
    windows: int
    mean_p: float
    observed: float

    @property
    def overconfident(self) -> bool:
        """Observed share below the mean P(met) by more than Z binomial standard errors."""
        if self.windows == 0:
            return False
        se = math.sqrt(max(self.mean_p * (1 - self.mean_p), 1e-4) / self.windows)
        return self.observed < self.mean_p - Z * se


def window_met_probability(
    plans: Sequence[PlanRecord],
    starts: pd.DatetimeIndex,
    workers: np.ndarray,
    policy: ScalingPolicy,
) -> np.ndarray:
    """P(met) of each window under the plan in force with ``workers`` (NaN: no plan)."""
    terms = slo_terms_from_policy(policy, 0.0)
    out = np.full(len(starts), np.nan)
    caps: dict[tuple[float, float], object] = {}
    k = 0
    ordered = [p for p in plans if p.distribution is not None and p.starts is not None]
    for i, t in enumerate(starts):
        while k + 1 < len(ordered) and ordered[k + 1].at <= t:
            k += 1
        if not ordered or ordered[k].at > t:
            continue
        rec = ordered[k]
        assert rec.starts is not None and rec.distribution is not None
        j = int(rec.starts.searchsorted(t))
        if j >= len(rec.starts) or rec.starts[j] != t:
            continue
        key = (rec.mean_service_s, rec.service_scv)
        if key not in caps:
            caps[key] = capacity_fn(*key)
        cap = caps[key]
        out[i] = rec.distribution.cdf(j, cap(int(workers[i]), terms))  # type: ignore[operator]
    return out


def reliability(p_met: np.ndarray, met: np.ndarray, busy: np.ndarray) -> list[ReliabilityBin]:
    """Bins of P(met) against the share really met (windows with demand and a plan)."""
    ok = np.isfinite(p_met) & busy
    out = []
    for lo, hi in zip(EDGES, EDGES[1:], strict=False):
        sel = ok & (p_met >= lo) & (p_met < hi)
        n = int(sel.sum())
        out.append(
            ReliabilityBin(
                lo,
                min(hi, 1.0),
                n,
                float(p_met[sel].mean()) if n else float("nan"),
                float(met[sel].mean()) if n else float("nan"),
            )
        )
    return out


def regimes(starts: pd.DatetimeIndex, busy: np.ndarray) -> np.ndarray:
    """``switch`` (Mondays, Saturdays, and the first day with demand after a day without)
    or ``steady``, per window."""
    days = starts.normalize()
    had = pd.Series(busy, index=days).groupby(level=0).any()
    after_closed = {
        d
        for d, prev in zip(had.index[1:], had.to_numpy()[:-1], strict=False)
        if not prev and had[d]
    }
    return np.where(
        np.isin(starts.dayofweek, (0, 5)) | np.isin(days, list(after_closed)), "switch", "steady"
    )


def calibration_summary(
    p_met: np.ndarray, met: np.ndarray, busy: np.ndarray, starts: pd.DatetimeIndex
) -> dict[str, object]:
    """The reliability bins, the Brier score and a per-regime mean P(met) vs observed."""
    ok = np.isfinite(p_met) & busy
    bins = reliability(p_met, met, busy)
    reg = regimes(starts, busy)
    per_regime = {}
    for r in ("switch", "steady"):
        sel = ok & (reg == r)
        if sel.any():
            per_regime[r] = {
                "windows": int(sel.sum()),
                "mean_p_met": float(p_met[sel].mean()),
                "observed": float(met[sel].mean()),
            }
    return {
        "bins": [
            {
                "lo": b.lo,
                "hi": b.hi,
                "windows": b.windows,
                "mean_p_met": None if b.windows == 0 else round(b.mean_p, 4),
                "observed": None if b.windows == 0 else round(b.observed, 4),
                "overconfident": b.overconfident,
            }
            for b in bins
        ],
        "brier": float(np.mean((p_met[ok] - met[ok]) ** 2)) if ok.any() else None,
        "mean_p_met": float(p_met[ok].mean()) if ok.any() else None,
        "observed": float(met[ok].mean()) if ok.any() else None,
        "per_regime": per_regime,
    }
