"""The robust anomaly detector on noise that grows with the rate: a daily batch far above the
rest of the day is ordinary, a burst is not."""

from __future__ import annotations

import numpy as np

from capplan_core.forecast.anomaly import detect_anomalies

DAY_STEPS, HOUR_STEPS = 96, 4  # 15-minute windows
BATCH = slice(5 * HOUR_STEPS, 8 * HOUR_STEPS)  # 05:00-08:00


def _batch_series(days: int = 14, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """0.5 jobs/s all day and 10 jobs/s in the morning batch, the noise proportional to the
    rate (15 %, as a batch of varying size has); returns the series and the batch mask."""
    rng = np.random.default_rng(seed)
    n = days * DAY_STEPS
    slot = np.arange(n) % DAY_STEPS
    in_batch = (slot >= BATCH.start) & (slot < BATCH.stop)
    rate = np.where(in_batch, 10.0, 0.5)
    return rate * rng.lognormal(0.0, 0.15, n), in_batch


def test_a_daily_batch_with_proportional_noise_is_not_an_anomaly() -> None:
    y, in_batch = _batch_series()
    report = detect_anomalies(y, DAY_STEPS, HOUR_STEPS)
    flagged = int(report.flags[in_batch].sum())
    # before the proportional spread: the batch measured against its quiet neighbourhood,
    # a third of its windows were flagged (and kept out of fitting)
    assert flagged <= 2, (flagged, int(in_batch.sum()))
    assert int(report.flags.sum()) <= 4


def test_a_burst_inside_the_batch_and_one_at_night_are_still_flagged() -> None:
    y, _ = _batch_series()
    burst_in_batch = 9 * DAY_STEPS + BATCH.start + 4
    burst_at_night = 10 * DAY_STEPS + 2 * HOUR_STEPS
    y[burst_in_batch] *= 3.0  # 30 jobs/s where 10 are usual
    y[burst_at_night] = 8.0  # a batch's rate at 02:00
    report = detect_anomalies(y, DAY_STEPS, HOUR_STEPS)
    assert report.flags[burst_in_batch] and report.flags[burst_at_night]
