"""RQ (python-rq 2.x/3.x) queues on Redis, read through RQ's own key layout.

Per queue, one atomic pipelined read (MULTI) takes:

* backlog ``LLEN rq:queue:<q>``; jobs in progress ``ZCARD rq:wip:<q>`` (StartedJobRegistry);
* the newest ids of ``rq:finished:<q>`` and ``rq:failed:<q>`` (Finished/FailedJobRegistry)
  with their scores, which are the times the job records expire;
* the workers listening on the queue ``SMEMBERS rq:workers:<q>`` (worker keys);

then one more pipelined round trip ``HMGET``s the job hashes not seen before (``enqueued_at``,
``started_at``, ``ended_at``: service time = ended − started, queue wait = started − enqueued)
and each worker's ``last_heartbeat``, ``birth``, ``queues`` and job counters
(``successful_job_count``, ``failed_job_count``); a worker whose key has expired is dead, and a
worker that left the queue since the previous poll is read once more for its last count (RQ
keeps a stopped worker's key for 60 s).

RQ has no arrival counter: completions are counted from the registries' job records, and
arrivals follow by conservation (see :mod:`capplan_core.metrics.rates`). A job record is
visible only while its result is kept (``result_ttl``, 500 s by default; ``failure_ttl`` for
failed jobs). When results expire sooner than the next poll (the registry's expiry minus the
job's ``ended_at`` is shorter than the time between polls), or with ``result_ttl=0``, the
registries miss jobs; the workers' own counters then count the completions (when every worker
of the queue serves only it), and the row says so (``partial``, with the reason).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from redis import Redis

from capplan_core.metrics.snapshot import JobSample, QueueSnapshot, ensure_utc

_JOB_FIELDS = ("enqueued_at", "started_at", "ended_at")
_WORKER_FIELDS = ("last_heartbeat", "birth", "queues", "successful_job_count", "failed_job_count")


def parse_rq_time(raw: bytes | str | None) -> float | None:
    """RQ's ``%Y-%m-%dT%H:%M:%S.%fZ`` (or without fraction) as epoch seconds; None if blank."""
    if not raw:
        return None
    text = raw.decode() if isinstance(raw, bytes) else raw
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def job_sample(job_id: str, values: Sequence[Any]) -> JobSample | None:
    """A :class:`JobSample` from an HMGET of ``_JOB_FIELDS``; None when the job has no end."""
    enq, start, end = (parse_rq_time(v) for v in values)
    if end is None:
        return None
    service = end - start if start is not None and end >= start else None
    wait = start - enq if start is not None and enq is not None and start >= enq else None
    return JobSample(job_id=job_id, ended_at_s=end, service_s=service, wait_s=wait)


class RQSource:
    """Metrics of RQ queues.

    Args:
        redis: connection to RQ's Redis (decode_responses either way).
        queues: RQ queue names.
        max_jobs_per_registry: newest finished/failed jobs read per poll; if a registry holds
            more, completions are counted only from the oldest job read onwards.
        result_ttl_s: how long finished jobs are known to stay in the registry (RQ default
            500 s); completions older than this are not guaranteed to be visible.
        lookback_s: completed jobs kept in a snapshot (their timings feed the percentiles).
    """

    name = "rq"

    def __init__(
        self,
        redis: Redis,
        queues: Sequence[str],
        *,
        max_jobs_per_registry: int = 5000,
        result_ttl_s: float = 500.0,
        lookback_s: float = 900.0,
        prefix: str = "rq",
    ) -> None:
        self.redis = redis
        self.queues = list(queues)
        self.max_jobs = max_jobs_per_registry
        self.result_ttl_s = result_ttl_s
        self.lookback_s = lookback_s
        self.prefix = prefix
        self._known: dict[str, dict[str, JobSample]] = {}
        # per queue, the live workers of the previous poll: {worker key: birth (epoch s)}
        self._workers: dict[str, dict[str, float]] = {}

    def seed(self, previous: Mapping[str, QueueSnapshot]) -> None:
        """Learn the workers of the previous cycle's snapshots (a fresh source in a new flow
        run), so a worker that has stopped since is read once more for its last count."""
        for q in self.queues:
            snap = previous.get(q)
            if snap is not None and snap.worker_counts is not None:
                self._workers[q] = {w: born for w, born, _, alive in snap.worker_counts if alive}

    def _read_state(self) -> list[Any]:
        p = self.redis.pipeline(transaction=True)
        p.smembers(f"{self.prefix}:queues")
        for q in self.queues:
            p.llen(f"{self.prefix}:queue:{q}")
            p.zcard(f"{self.prefix}:wip:{q}")
            p.zrange(f"{self.prefix}:finished:{q}", -self.max_jobs, -1, withscores=True)
            p.zrange(f"{self.prefix}:failed:{q}", -self.max_jobs, -1, withscores=True)
            p.smembers(f"{self.prefix}:workers:{q}")
        return p.execute()

    def poll(self, now: datetime) -> list[QueueSnapshot]:
        """One snapshot per queue (two pipelined round trips for all queues together)."""
        now = ensure_utc(now)
        state = self._read_state()
        known_queues = {_text(k) for k in state[0]}
        per_q = [state[1 + 5 * i : 6 + 5 * i] for i in range(len(self.queues))]
        p = self.redis.pipeline(transaction=False)
        plan: list[tuple[int, str, str]] = []  # (queue index, "job"|"worker", id)
        for i, (q, (_, _, fin, fail, members)) in enumerate(zip(self.queues, per_q, strict=True)):
            known = self._known.get(q, {})
            for jid in (_text(x) for x, _ in [*fin, *fail]):
                if jid not in known:
                    p.hmget(f"{self.prefix}:job:{jid}", *_JOB_FIELDS)
                    plan.append((i, "job", jid))
            listed = [_text(x) for x in members]  # members are worker keys
            departed = [w for w in self._workers.get(q, {}) if w not in listed]
            for w in [*listed, *departed]:
                p.hmget(w, *_WORKER_FIELDS)
                plan.append((i, "worker", w))
        replies = p.execute() if plan else []
        fresh: list[dict[str, JobSample]] = [{} for _ in self.queues]
        workers: list[dict[str, list[Any]]] = [{} for _ in self.queues]
        for (i, kind, ident), reply in zip(plan, replies, strict=True):
            if kind == "worker":
                workers[i][ident] = reply
            elif (s := job_sample(ident, reply)) is not None:
                fresh[i][ident] = s
        return [
            self._snapshot(
                q, now, per_q[i], fresh[i], workers[i], f"{self.prefix}:queue:{q}" in known_queues
            )
            for i, q in enumerate(self.queues)
        ]

    def _snapshot(
        self,
        q: str,
        now: datetime,
        st: list[Any],
        fresh: dict[str, JobSample],
        worker_replies: dict[str, list[Any]],
        exists: bool,
    ) -> QueueSnapshot:
        backlog, wip, fin, fail, members = st
        expiry = {_text(j): float(score) for j, score in [*fin, *fail]}
        ids = list(expiry)
        known = self._known.get(q, {})
        samples = {j: known.get(j) or fresh.get(j) for j in ids}
        self._known[q] = {j: s for j, s in samples.items() if s is not None}
        now_s = now.timestamp()
        jobs = tuple(s for s in self._known[q].values() if s.ended_at_s >= now_s - self.lookback_s)
        ttl = _shortest_ttl(expiry, self._known[q])
        complete_since = now_s - min(self.result_ttl_s, ttl if ttl is not None else math.inf)
        notes: list[str] = []
        for reg in (fin, fail):
            if len(reg) >= self.max_jobs:
                ends = [s.ended_at_s for j, _ in reg if (s := samples.get(_text(j)))]
                complete_since = max(complete_since, min(ends, default=now_s))
                notes.append(f"registry holds more than {self.max_jobs} jobs; counted newest only")
        listed = {_text(x) for x in members}
        counts, live, why = _worker_counts(q, worker_replies, listed, self._workers.get(q, {}))
        self._workers[q] = {w: born for w, born, _, alive in counts or () if alive}
        if why:
            notes.append(why)
        if not exists and not backlog and not wip and not ids and not live:
            return QueueSnapshot(queue=q, recorded_at=now, source=self.name, exists=False)
        return QueueSnapshot(
            queue=q,
            recorded_at=now,
            source=self.name,
            backlog=float(backlog),
            in_progress=float(wip),
            workers=float(live),
            jobs=jobs,
            jobs_complete_since_s=complete_since,
            worker_counts=counts,
            result_ttl_s=ttl,
            notes=tuple(dict.fromkeys(notes)),
        )


def _shortest_ttl(expiry: dict[str, float], samples: dict[str, JobSample]) -> float | None:
    """The shortest time a job record is kept (s): its registry expiry minus its end, over
    the jobs still readable; None when none is (or every record is kept forever)."""
    ttls = [
        expiry[j] - s.ended_at_s
        for j, s in samples.items()
        if j in expiry and math.isfinite(expiry[j])
    ]
    return max(0.0, min(ttls)) if ttls else None


def _worker_counts(
    q: str, replies: dict[str, list[Any]], listed: set[str], before: dict[str, float]
) -> tuple[tuple[tuple[str, float, float, bool], ...] | None, int, str]:
    """(per-worker counters or None, live workers, why the counters are unusable or "")."""
    counts: list[tuple[str, float, float, bool]] = []
    live, why = 0, ""
    for w, reply in replies.items():
        beat, birth, queues, ok, failed = reply
        alive = w in listed
        if alive:
            live += beat is not None
        born = parse_rq_time(birth)
        if born is None:  # the key expired (a dead worker), or not an RQ worker hash
            continue
        if alive and queues is not None and _text(queues).split(",") != [q]:
            why = (
                f"worker {w} also serves {_text(queues)}: RQ's per-worker job counters "
                "cannot be split by queue"
            )
        if not alive and abs(before.get(w, math.nan) - born) > 1e-3:
            continue  # a departed worker's key now belongs to a worker born since
        counts.append((w, born, float(int(ok or 0) + int(failed or 0)), alive))
    return (None if why else tuple(counts)), live, why


def _text(x: bytes | str) -> str:
    return x.decode() if isinstance(x, bytes) else x
