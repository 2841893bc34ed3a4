"""The exporter's arithmetic: cycles derived from plans, approval waits, forecast error."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from capplan_core.ops_metrics import (
    PlanFact,
    approval_waits,
    bucket_counts,
    cycles,
    forecast_error,
    last_successful,
    missing_queues,
    newest_cycle,
    oldest_awaiting_age_s,
)

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
AS_OF_1 = datetime(2026, 11, 1, 11, 30, tzinfo=UTC)
AS_OF_2 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def plan(
    pid: int,
    queue: str,
    status: str,
    at_s: float,
    as_of: datetime = AS_OF_2,
    decided_after_s: float | None = None,
) -> PlanFact:
    created = T0 + timedelta(seconds=at_s)
    decided = None if decided_after_s is None else created + timedelta(seconds=decided_after_s)
    return PlanFact(pid, queue, status, created, as_of, decided)


def test_newest_cycle_is_the_plans_sharing_the_newest_as_of() -> None:
    plans = [
        plan(1, "a", "applied", 0, AS_OF_1),
        plan(2, "b", "skipped", 5, AS_OF_1),
        plan(3, "a", "proposed", 1800),
        plan(4, "b", "skipped", 1812),
        plan(5, "c", "approved", 1830),
    ]
    c = newest_cycle(plans)
    assert c is not None
    assert c.as_of == AS_OF_2
    assert (c.planned, c.skipped, c.failed) == (2, 1, 0)
    assert c.duration_s == 30.0
    assert c.queues == frozenset({"a", "b", "c"})
    assert c.succeeded


def test_rerun_over_the_same_data_starts_a_new_cycle_at_the_repeated_queue() -> None:
    plans = [
        plan(1, "a", "proposed", 0),
        plan(2, "b", "proposed", 10),
        plan(3, "a", "proposed", 60),
        plan(4, "b", "failed", 70),
    ]
    found = cycles(plans)
    assert [sorted(c.queues) for c in found] == [["a", "b"], ["a", "b"]]
    assert found[0].started_at == T0 + timedelta(seconds=60)
    assert found[0].failed == 1 and not found[0].succeeded
    assert last_successful(found) is found[1]


def test_a_gap_longer_than_max_gap_splits_cycles() -> None:
    plans = [plan(1, "a", "proposed", 0), plan(2, "b", "proposed", 1000)]
    assert len(cycles(plans, max_gap_s=900)) == 2
    assert len(cycles(plans, max_gap_s=1200)) == 1


def test_no_plans_means_no_cycle_and_every_enabled_queue_missing() -> None:
    assert newest_cycle([]) is None
    assert last_successful([]) is None
    assert missing_queues(None, {"a", "b"}) == {"a", "b"}


def test_missing_queues_are_enabled_queues_without_a_plan_in_the_cycle() -> None:
    c = newest_cycle([plan(1, "a", "proposed", 0)])
    assert missing_queues(c, {"a", "b", "c"}) == {"b", "c"}


def test_max_gap_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_gap_s"):
        cycles([], max_gap_s=0)


def test_approval_waits_are_decided_minus_created_per_decision() -> None:
    plans = [
        plan(1, "a", "approved", 0, decided_after_s=120),
        plan(2, "b", "rejected", 0, decided_after_s=30),
        plan(3, "c", "expired", 0, decided_after_s=3600),
        plan(4, "d", "proposed", 0),
        plan(5, "e", "superseded", 0, decided_after_s=50),  # approved, then superseded
        plan(6, "f", "superseded", 0),
    ]  # superseded while still proposed: never decided
    assert approval_waits(plans) == {
        "approved": [120.0, 50.0],
        "rejected": [30.0],
        "expired": [3600.0],
    }


def test_oldest_awaiting_age() -> None:
    assert oldest_awaiting_age_s(None, T0) == 0.0
    assert oldest_awaiting_age_s(T0 - timedelta(minutes=5), T0) == 300.0


def test_bucket_counts_are_cumulative_with_inf_last() -> None:
    assert bucket_counts([10, 60, 61, 4000], [60, 300, 3600]) == [2, 3, 3, 4]
    assert bucket_counts([], [1.0]) == [0, 0]
    with pytest.raises(ValueError, match="increasing"):
        bucket_counts([1], [5, 1])


def test_forecast_error_uses_only_windows_that_have_passed_and_hold_observations() -> None:
    step = timedelta(minutes=15)
    fc = [(T0 + i * step, rate) for i, rate in enumerate([10.0, 20.0, 5.0, 7.0])]
    obs = [
        (T0, 8.0),
        (T0 + timedelta(minutes=5), 12.0),  # window 0: mean 10 → error 0
        (T0 + step, 25.0),  # window 1: error 5, relative 5/25
        # window 2: no observation; window 3 has not ended at `now`
        (T0 + 3 * step, 0.0),
    ]
    now = T0 + 3 * step + timedelta(minutes=10)
    e = forecast_error(fc, obs, now)
    assert e.windows == 2
    assert e.mae_per_s == pytest.approx(2.5)
    assert e.mape_ratio == pytest.approx((0 / 10 + 5 / 25) / 2)


def test_forecast_error_leaves_zero_observed_windows_out_of_mape_only() -> None:
    fc = [(T0, 2.0), (T0 + timedelta(minutes=15), 4.0)]
    obs = [(T0, 0.0), (T0 + timedelta(minutes=15), 5.0)]
    e = forecast_error(fc, obs, T0 + timedelta(hours=1))
    assert (e.windows, e.mae_per_s, e.mape_ratio) == (2, 1.5, pytest.approx(0.2))


def test_forecast_error_without_comparable_windows_is_nan() -> None:
    e = forecast_error([(T0, 1.0)], [(T0, 1.0)], T0 + timedelta(hours=1))
    assert e.windows == 0 and math.isnan(e.mae_per_s) and math.isnan(e.mape_ratio)
    e = forecast_error([(T0, 1.0)], [(T0, 3.0)], T0 + timedelta(hours=1), interval_s=60)
    assert (e.windows, e.mae_per_s, e.mape_ratio) == (1, 2.0, pytest.approx(2 / 3))
    with pytest.raises(ValueError, match="interval_s"):
        forecast_error([(T0, 1.0)], [], T0, interval_s=0)
