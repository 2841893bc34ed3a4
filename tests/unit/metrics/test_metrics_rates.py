"""snapshots_to_metrics / window_metrics: counters, resets, conservation, missing queues."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capplan_core.metrics.rates import quantile, snapshots_to_metrics, window_metrics
from capplan_core.metrics.snapshot import JobSample, QueueSnapshot

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def snap(t_s: float, **kw) -> QueueSnapshot:
    kw.setdefault("queue", "q")
    kw.setdefault("source", "list")
    return QueueSnapshot(recorded_at=T0 + timedelta(seconds=t_s), **kw)


def test_counters_give_rates_over_the_interval() -> None:
    a = snap(0, enqueued_total=100, completed_total=90, backlog=10, workers=3)
    b = snap(60, enqueued_total=160, completed_total=180, backlog=4, workers=4)
    row = snapshots_to_metrics(a, b)
    assert row.arrival_rate == pytest.approx(1.0)
    assert row.completion_rate == pytest.approx(1.5)
    assert (row.backlog, row.workers, row.interval_s) == (4, 4, 60)
    assert not row.partial


def test_counter_reset_gives_unknown_rate_never_negative() -> None:
    a = snap(0, enqueued_total=5000, completed_total=4990)
    b = snap(60, enqueued_total=30, completed_total=25)
    row = snapshots_to_metrics(a, b)
    assert row.arrival_rate is None and row.completion_rate is None
    assert any("reset" in n for n in row.notes)


def test_reset_in_one_interval_of_a_window_is_partial() -> None:
    snaps = [
        snap(0, enqueued_total=100),
        snap(10, enqueued_total=120),
        snap(20, enqueued_total=3),
        snap(30, enqueued_total=23),
    ]
    row = window_metrics(snaps)
    assert row.arrival_rate == pytest.approx(2.0)  # 40 jobs over the 20 known seconds
    assert row.partial


def test_first_poll_has_no_rates_but_instantaneous_fields() -> None:
    row = snapshots_to_metrics(None, snap(0, enqueued_total=10, backlog=7, workers=2))
    assert row.arrival_rate is None and row.backlog == 7 and row.workers == 2


def test_missing_queue_gives_empty_row_with_a_reason() -> None:
    row = snapshots_to_metrics(snap(0, backlog=3), snap(60, exists=False))
    assert row.arrival_rate is None and row.backlog is None
    assert "not found" in row.notes[-1]


def test_previous_snapshot_of_another_source_is_not_used() -> None:
    a = snap(0, enqueued_total=0, source="rq")
    b = snap(60, enqueued_total=60)
    assert snapshots_to_metrics(a, b).arrival_rate is None


def rq_like(t_s: float, backlog: float, wip: float, jobs: list[JobSample]) -> QueueSnapshot:
    return snap(
        t_s,
        source="rq",
        backlog=backlog,
        in_progress=wip,
        jobs=tuple(jobs),
        jobs_complete_since_s=(T0 + timedelta(seconds=t_s)).timestamp() - 500,
    )


def job(i: int, end_s: float, service: float = 0.5, wait: float = 1.0) -> JobSample:
    return JobSample(f"j{i}", (T0 + timedelta(seconds=end_s)).timestamp(), service, wait)


def test_conservation_counts_arrivals_without_counters() -> None:
    done = [job(i, 1 + i) for i in range(30)]  # 30 completions in (0, 60]
    a = rq_like(0, backlog=10, wip=2, jobs=[job(99, -5)])
    b = rq_like(60, backlog=16, wip=3, jobs=done)
    row = snapshots_to_metrics(a, b)
    assert row.completion_rate == pytest.approx(30 / 60)
    assert row.arrival_rate == pytest.approx((30 + 6 + 1) / 60)
    assert row.service_time_mean_s == pytest.approx(0.5) and row.service_rate == pytest.approx(2)
    assert row.wait_p95_s == pytest.approx(1.0) and row.samples == 30


def test_flush_between_polls_is_unknown_not_negative() -> None:
    a = rq_like(0, backlog=500, wip=4, jobs=[])
    b = rq_like(60, backlog=0, wip=0, jobs=[])
    row = snapshots_to_metrics(a, b)
    assert row.arrival_rate is None
    assert row.completion_rate == 0


def test_service_time_statistics_from_samples() -> None:
    services = [0.1, 0.2, 0.3, 0.4]
    b = rq_like(60, 0, 0, [job(i, 10 + i, service=s) for i, s in enumerate(services)])
    row = snapshots_to_metrics(rq_like(0, 0, 0, []), b)
    mean = 0.25
    var = sum((s - mean) ** 2 for s in services) / 4
    assert row.service_time_mean_s == pytest.approx(mean)
    assert row.service_time_scv == pytest.approx(var / mean**2)


def test_littles_law_estimates_service_time_without_samples() -> None:
    a = snap(0, source="stream", enqueued_total=0, completed_total=0, in_progress=4, backlog=0)
    b = snap(
        100, source="stream", enqueued_total=400, completed_total=400, in_progress=4, backlog=0
    )
    row = snapshots_to_metrics(a, b)
    assert row.service_time_mean_s == pytest.approx(1.0)  # L=4 in service / 4 jobs/s
    assert any("Little" in n for n in row.notes)


def test_source_computed_rates_win() -> None:
    b = snap(60, source="prometheus", arrival_rate_per_s=2.5, service_time_mean_s=0.2)
    row = snapshots_to_metrics(snap(0, source="prometheus"), b)
    assert row.arrival_rate == 2.5 and row.service_rate == pytest.approx(5)


def test_snapshot_round_trips_through_json_dict() -> None:
    s = rq_like(3, 1, 2, [job(1, 2)])
    assert QueueSnapshot.from_dict(s.to_dict()) == s


@settings(deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 10_000)), min_size=2, max_size=8))
def test_rates_are_never_negative(counters: list[tuple[int, int]]) -> None:
    snaps = [
        snap(10 * i, enqueued_total=e, completed_total=c, backlog=0, in_progress=0)
        for i, (e, c) in enumerate(counters)
    ]
    row = window_metrics(snaps)
    for v in (row.arrival_rate, row.completion_rate):
        assert v is None or v >= 0


@settings(deadline=None)  # shared 2-core machine: timing is not what is tested
@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=50), st.floats(0, 1))
def test_quantile_agrees_with_numpy(values: list[float], q: float) -> None:
    assert quantile(sorted(values), q) == pytest.approx(
        float(np.quantile(values, q)), rel=1e-9, abs=1e-9
    )
