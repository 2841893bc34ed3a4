"""Job records that expire before they are counted (RQ's ``result_ttl`` shorter than the time
between polls, or 0): detected against the workers' own job counters, counted from them when
every worker is accounted for, and always flagged ``partial`` with the reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from capplan_core.metrics.rates import snapshots_to_metrics, worker_completions
from capplan_core.metrics.snapshot import JobSample, QueueSnapshot

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
S0 = T0.timestamp()
BORN = S0 - 3600.0


def snap(
    t_s: float,
    workers: tuple | None,
    *,
    ttl: float | None = 500.0,
    jobs_ended: tuple[float, ...] = (),
    backlog: float = 0.0,
) -> QueueSnapshot:
    """An RQ snapshot at ``t_s``: job records ending at ``jobs_ended`` (s after T0), complete
    for the last ``ttl`` seconds."""
    now = S0 + t_s
    return QueueSnapshot(
        queue="q",
        recorded_at=T0 + timedelta(seconds=t_s),
        source="rq",
        backlog=backlog,
        in_progress=0.0,
        workers=2.0,
        jobs=tuple(JobSample(f"j{e}", S0 + e, 0.1, 0.0) for e in jobs_ended),
        jobs_complete_since_s=now - (ttl if ttl is not None else 500.0),
        worker_counts=workers,
        result_ttl_s=ttl,
    )


def w(name: str, n: float, *, born: float = BORN, alive: bool = True) -> tuple:
    return (f"rq:worker:{name}", born, n, alive)


def test_records_and_worker_counters_agree_then_records_count() -> None:
    a = snap(0, (w("a", 10), w("b", 5)))
    b = snap(60, (w("a", 14), w("b", 7)), jobs_ended=(10, 20, 30, 40, 50, 55))
    row = snapshots_to_metrics(a, b)
    assert row.completion_rate == pytest.approx(6 / 60)
    assert row.arrival_rate == pytest.approx(6 / 60)
    assert not row.partial and row.notes == ()


def test_a_registry_one_job_behind_the_counters_is_not_a_loss() -> None:
    # the counters are read a moment after the registries: a job ending in between
    a = snap(0, (w("a", 10),))
    b = snap(60, (w("a", 17),), jobs_ended=(10, 20, 30, 40, 50, 55))
    row = snapshots_to_metrics(a, b)
    assert row.completion_rate == pytest.approx(6 / 60) and not row.partial


def test_results_expiring_between_polls_are_counted_from_the_workers() -> None:
    # 0.96 jobs/s for 7 s, results kept 5 s: only the last 5 s of jobs are still there
    a = snap(0, (w("a", 100), w("b", 90)), ttl=5.0)
    b = snap(7, (w("a", 104), w("b", 93)), ttl=5.0, jobs_ended=(2.5, 4, 5.5, 6.5, 6.9))
    row = snapshots_to_metrics(a, b)
    assert row.completion_rate == pytest.approx(7 / 7)
    assert row.arrival_rate == pytest.approx(7 / 7)
    assert row.partial
    assert row.notes == (
        "job results expire before they are counted (result_ttl 5 s < 7 s "
        "between polls); completions counted from the workers' job counters, "
        "job timings from the records still there",
    )
    assert row.samples == 5  # the timings are the jobs still visible only


def test_without_usable_worker_counters_the_interval_is_unknown_and_partial() -> None:
    a = snap(0, None, ttl=5.0)
    b = snap(7, None, ttl=5.0, jobs_ended=(2.5, 4, 5.5))
    row = snapshots_to_metrics(a, b)
    assert row.completion_rate is None and row.arrival_rate is None
    assert row.partial
    assert "completions unknown" in row.notes[0] and "result_ttl 5 s < 7 s" in row.notes[0]


def test_jobs_with_result_ttl_zero_leave_no_record_but_are_counted() -> None:
    a = snap(0, (w("a", 0),))
    b = snap(60, (w("a", 30),))  # the registry looks complete, and empty
    row = snapshots_to_metrics(a, b)
    assert row.completion_rate == pytest.approx(0.5)
    assert row.partial
    assert row.notes[0].startswith("30 of 30 completed jobs were missing from RQ's job registries")


@pytest.mark.parametrize(
    "at_b, expected",
    [
        # a worker stopped between the polls, read once more (dead) with its last count
        ((w("a", 14), w("b", 9, alive=False)), 8.0),
        # a worker started since the previous poll counts from 0
        ((w("a", 14), w("b", 7), w("c", 3, born=S0 + 20)), 9.0),
        # a worker alive at the previous poll and gone without its last count: unknown
        ((w("a", 14),), None),
        # restarted under the same name: the old run's last jobs are unknown
        ((w("a", 14), w("b", 1, born=S0 + 30)), None),
        # first seen now but running before: its count at the previous poll is unknown
        ((w("a", 14), w("b", 7), w("c", 3)), None),
        # a counter that went down
        ((w("a", 9), w("b", 7)), None),
    ],
)
def test_worker_completions_need_every_worker_accounted_for(
    at_b: tuple, expected: float | None
) -> None:
    a = snap(0, (w("a", 10), w("b", 5)))
    assert worker_completions(a, snap(60, at_b)) == expected


def test_a_dead_worker_of_the_previous_poll_may_be_gone_now() -> None:
    a = snap(0, (w("a", 10), w("b", 9, alive=False)))
    assert worker_completions(a, snap(60, (w("a", 12),))) == 2.0


def test_worker_counts_survive_the_snapshot_cache() -> None:
    s = snap(0, (w("a", 10), w("b", 9, alive=False)), ttl=5.0)
    back = QueueSnapshot.from_dict(s.to_dict())
    assert back.worker_counts == s.worker_counts and back.result_ttl_s == 5.0
    assert QueueSnapshot.from_dict(snap(0, None).to_dict()).worker_counts is None
