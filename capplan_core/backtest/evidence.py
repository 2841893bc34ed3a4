"""A backtest cut into the day-long stretches a strategy choice keeps (pure).

``scaling.strategy: auto`` chooses from the queue's last week (planning/strategy_choice.py).
Replaying the whole week every day would cost seven days of replay per queue per day; the
choice instead keeps its evidence as stretches, and the next run replays only what came
since the newest one. :func:`evidence_days` cuts one replay into those stretches, aligned
back from its end, with the counts whose sums give exactly the replay's own figures.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from capplan_core.backtest.run import BacktestResult
from capplan_core.planning.strategy_evidence import EvidenceDay

DAY_S = 86_400.0


def evidence_days(result: BacktestResult, *, day_s: float = DAY_S) -> list[EvidenceDay]:
    """``result``'s scored windows as stretches of ``day_s`` ending at its end, oldest first
    (the oldest is shorter when the period is not a whole number of days)."""
    if day_s <= 0:
        raise ValueError(f"day_s must be > 0 (got {day_s!r})")
    trace = result.trace
    end = result.end
    window_h = result.window_s / 3600.0
    age_s = np.asarray((end - trace.starts).total_seconds(), dtype=float)
    stretch = ((age_s - 1e-6) // day_s).astype(int)  # 0: the newest day
    busy = trace.arrival_rate_per_s > 0
    met = {
        name: np.asarray([w.meets_slo for w in result.strategies[name].windows], dtype=bool)
        for name in ("predictive", "hybrid")
    }
    days = []
    for k in sorted(set(stretch.tolist()), reverse=True):
        here = stretch == k
        first = trace.starts[int(np.argmax(here))]
        days.append(
            EvidenceDay(
                start=first.to_pydatetime(),
                end=(end - pd.Timedelta(seconds=k * day_s)).to_pydatetime(),
                cadence_s=result.cadence_s,
                windows_with_demand=int(busy[here].sum()),
                predictive_missed=int((busy & here & ~met["predictive"]).sum()),
                hybrid_missed=int((busy & here & ~met["hybrid"]).sum()),
                predictive_worker_hours=float(result.workers["predictive"][here].sum() * window_h),
                hybrid_worker_hours=float(result.workers["hybrid"][here].sum() * window_h),
                oracle_worker_hours=float(result.workers["oracle"][here].sum() * window_h),
            )
        )
    return days
