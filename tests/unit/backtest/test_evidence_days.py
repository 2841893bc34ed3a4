"""A backtest cut into the day-long stretches a strategy choice keeps
(capplan_core/backtest/evidence.py): aligned back from the replay's end, and their sums are
exactly the replay's own figures, so a week kept as days chooses as the week would."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capplan_core.backtest.evidence import evidence_days
from capplan_core.backtest.run import BacktestError, run_backtest
from capplan_core.planning.strategy_evidence import evidence_over
from tests.unit.backtest.synthetic import T0, policy, rows

HOUR = pd.Timedelta(hours=1)


def _surprise(idx: pd.DatetimeIndex) -> np.ndarray:
    """Open 08:00-18:00 at 9 jobs/s, then 16 from the fourth day: predictive misses."""
    day = (idx - T0).days
    return np.where((idx.hour >= 8) & (idx.hour < 18), np.where(day >= 3, 16.0, 9.0), 2.0)


def test_stretches_end_at_the_replay_end_and_sum_to_its_figures() -> None:
    frame = rows(4, _surprise, workers=3)
    start, end = T0 + 48 * HOUR, T0 + 84 * HOUR  # 36 h: a 12-h stretch, then a day
    r = run_backtest(frame, policy(), start=start, end=end)
    days = evidence_days(r, day_s=86_400.0)
    assert [(d.start, d.end) for d in days] == [
        (start, start + 12 * HOUR),
        (start + 12 * HOUR, end),
    ]
    assert all(d.cadence_s == r.cadence_s for d in days)
    assert sum(d.windows_with_demand for d in days) == 36 * 4
    scores = r.to_dict()["strategies"]
    for name in ("predictive", "hybrid"):
        e = evidence_over(days, name)
        assert e.attainment == pytest.approx(scores[name]["slo_attainment"], abs=1e-12)
        assert e.worker_hours == pytest.approx(scores[name]["worker_hours"], rel=1e-12)
        assert e.x_oracle == pytest.approx(scores[name]["worker_hours_vs_oracle"], rel=1e-12)
    # each miss is counted in the stretch its window fell in
    missed_at = [
        t
        for t, w, lam in zip(
            r.trace.starts,
            r.strategies["predictive"].windows,
            r.trace.arrival_rate_per_s,
            strict=True,
        )
        if lam > 0 and not w.meets_slo
    ]
    assert len(missed_at) > 0 and days[1].predictive_missed > 0  # the surprise day
    for d in days:
        assert d.predictive_missed == sum(d.start <= t < d.end for t in missed_at)
    with pytest.raises(ValueError, match="day_s"):
        evidence_days(r, day_s=0)


def test_a_queue_that_stopped_reporting_is_scored_only_up_to_its_last_metrics() -> None:
    """Filling the days after the last metrics from the last value would invent demand the
    choice is then made on: the period stops at the last metrics and says so."""
    frame = rows(4, _surprise, workers=3)  # metrics until T0 + 4 days
    r = run_backtest(frame, policy(), start=T0 + 72 * HOUR, end=T0 + 144 * HOUR)
    assert r.end == T0 + 96 * HOUR and len(r.trace.starts) == 24 * 4
    assert any("after the last metrics" in n and "reported nothing since" in n for n in r.notes)
    assert evidence_days(r)[-1].end == T0 + 96 * HOUR  # the next run replays from there
    with pytest.raises(BacktestError, match="empty period"):
        run_backtest(frame, policy(), start=T0 + 100 * HOUR, end=T0 + 144 * HOUR)
