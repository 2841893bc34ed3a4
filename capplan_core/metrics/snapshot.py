"""What a metrics source sees of one queue at one instant: the ``QueueSnapshot``.

A source is polled; each poll returns one snapshot per queue. Rates are not in a snapshot
(except where the source itself computes them, e.g. Prometheus ``rate()``): they come from two
or more consecutive snapshots, see :mod:`capplan_core.metrics.rates`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from capplan_core.utc import utc_datetime


@dataclass(frozen=True)
class JobSample:
    """One completed job, as far as the source knows it.

    Attributes:
        job_id: identity (deduplicates the same job seen by several polls).
        ended_at_s: completion time, Unix epoch seconds.
        service_s: ``ended_at - started_at`` (s), or None when unknown.
        wait_s: queue wait ``started_at - enqueued_at`` (s), or None when unknown.
    """

    job_id: str
    ended_at_s: float
    service_s: float | None = None
    wait_s: float | None = None


@dataclass(frozen=True)
class QueueSnapshot:
    """The state of one queue at ``recorded_at`` (UTC), as one source sees it.

    Counters are cumulative and may reset (Redis restart, FLUSHDB, stream re-created); the
    rate computation detects a decrease and never produces a negative rate. Every field a
    source cannot observe is None (or empty), never a guess.

    Attributes:
        queue: queue name.
        recorded_at: poll time, tz-aware UTC.
        source: source kind (``rq``, ``stream``, ``list``, ``prometheus``, ``celery``).
        exists: False when the queue is not known to the source at all.
        backlog: jobs waiting, not yet started.
        in_progress: jobs started and not finished (delivered, unacknowledged).
        workers: live workers consuming the queue.
        enqueued_total / completed_total: cumulative counters (jobs), where the source has them.
        jobs: recently completed jobs with timings (RQ job hashes, instrumented lists).
        jobs_complete_since_s: epoch seconds after which ``jobs`` holds *every* completion (so
            they can be counted); None when ``jobs`` is only a sample.
        arrival_rate_per_s / completion_rate_per_s: rates the source computed itself.
        service_time_mean_s / service_time_p95_s / service_time_scv / wait_p95_s: summaries the
            source computed itself (Prometheus histograms).
        worker_counts: per worker of the queue, ``(worker, born_at_s, completed, alive)``: the
            jobs it has completed since it was born (RQ's ``successful_job_count`` +
            ``failed_job_count``), and whether it still runs (a worker that stopped since the
            previous poll is reported once more, dead, with its last count). None when the
            source keeps no such counters or they cannot be attributed to this queue.
        result_ttl_s: the shortest time the source keeps a completed job's record, as read on
            the records themselves (RQ: registry expiry − ``ended_at``); None when unknown.
        notes: what the source could not see, in plain words.
        error: set when this queue could not be read (all data fields then None).
    """

    queue: str
    recorded_at: datetime
    source: str
    exists: bool = True
    backlog: float | None = None
    in_progress: float | None = None
    workers: float | None = None
    enqueued_total: float | None = None
    completed_total: float | None = None
    jobs: tuple[JobSample, ...] = ()
    jobs_complete_since_s: float | None = None
    arrival_rate_per_s: float | None = None
    completion_rate_per_s: float | None = None
    service_time_mean_s: float | None = None
    service_time_p95_s: float | None = None
    service_time_scv: float | None = None
    wait_p95_s: float | None = None
    worker_counts: tuple[tuple[str, float, float, bool], ...] | None = None
    result_ttl_s: float | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    error: str | None = None

    @property
    def recorded_at_s(self) -> float:
        """``recorded_at`` as Unix epoch seconds."""
        return self.recorded_at.timestamp()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``recorded_at`` as ISO-8601; NaN/inf as None)."""
        # not dataclasses.asdict: its deep copies dominate a 1,000-queue cycle
        d: dict[str, Any] = {f.name: getattr(self, f.name) for f in _SNAPSHOT_FIELDS}
        d["recorded_at"] = self.recorded_at.isoformat()
        d["jobs"] = [asdict(j) for j in self.jobs]
        d["notes"] = list(self.notes)
        if self.worker_counts is not None:
            d["worker_counts"] = [list(w) for w in self.worker_counts]
        for k, v in d.items():
            if isinstance(v, float) and not math.isfinite(v):
                d[k] = None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QueueSnapshot:
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        kw["recorded_at"] = ensure_utc(datetime.fromisoformat(str(d["recorded_at"])))
        kw["jobs"] = tuple(JobSample(**j) for j in d.get("jobs") or ())
        kw["notes"] = tuple(d.get("notes") or ())
        if d.get("worker_counts") is not None:
            kw["worker_counts"] = tuple(
                (str(w), float(b), float(n), bool(a)) for w, b, n, a in d["worker_counts"]
            )
        return cls(**kw)


_SNAPSHOT_FIELDS = fields(QueueSnapshot)


def ensure_utc(ts: datetime) -> datetime:
    """A tz-aware UTC datetime (naive input is UTC); see :func:`capplan_core.utc.utc_datetime`."""
    return utc_datetime(ts)


def failed_snapshot(queue: str, now: datetime, source: str, error: str) -> QueueSnapshot:
    """A snapshot that says this queue could not be read (isolates one queue's failure)."""
    return QueueSnapshot(queue=queue, recorded_at=ensure_utc(now), source=source, error=error)


@runtime_checkable
class MetricsSource(Protocol):
    """A port where queue metrics enter capplan.

    ``poll`` returns one snapshot per queue in ``queues``; a queue that cannot be read gets a
    snapshot with ``error`` set rather than an exception, so other queues are unaffected. An
    exception means the whole source failed (e.g. unreachable); the collector isolates it.
    """

    @property
    def name(self) -> str: ...

    @property
    def queues(self) -> Sequence[str]: ...

    def poll(self, now: datetime) -> list[QueueSnapshot]: ...
