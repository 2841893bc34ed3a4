"""RQ (python-rq 2.x/3.x) queues on Redis, read through RQ's own key layout.

Per queue, one atomic pipelined read (MULTI) takes:

* backlog ``LLEN rq:queue:<q>``; jobs in progress ``ZCARD rq:wip:<q>`` (StartedJobRegistry);
* the newest ids of ``rq:finished:<q>`` and ``rq:failed:<q>`` (Finished/FailedJobRegistry);
* the workers listening on the queue ``SMEMBERS rq:workers:<q>`` (worker keys);

then one more pipelined round trip ``HMGET``s the job hashes not seen before (``enqueued_at``,
``started_at``, ``ended_at``: service time = ended − started, queue wait = started − enqueued)
and each worker's ``last_heartbeat`` (a worker whose key has expired is dead).

RQ has no arrival counter: completions are counted from the registries' job records, and
arrivals follow by conservation (see :mod:`capplan_core.metrics.rates`). Completed jobs are
visible only while their result is kept (``result_ttl``, 500 s by default; ``failure_ttl`` for
failed jobs); jobs run with ``result_ttl=0`` leave no trace and are not counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from redis import Redis

from capplan_core.metrics.snapshot import JobSample, QueueSnapshot, ensure_utc

_JOB_FIELDS = ("enqueued_at", "started_at", "ended_at")


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

    def __init__(self, redis: Redis, queues: Sequence[str], *, max_jobs_per_registry: int = 5000,
                 result_ttl_s: float = 500.0, lookback_s: float = 900.0,
                 prefix: str = "rq") -> None:
        self.redis = redis
        self.queues = list(queues)
        self.max_jobs = max_jobs_per_registry
        self.result_ttl_s = result_ttl_s
        self.lookback_s = lookback_s
        self.prefix = prefix
        self._known: dict[str, dict[str, JobSample]] = {}

    def _read_state(self) -> list[Any]:
        p = self.redis.pipeline(transaction=True)
        p.smembers(f"{self.prefix}:queues")
        for q in self.queues:
            p.llen(f"{self.prefix}:queue:{q}")
            p.zcard(f"{self.prefix}:wip:{q}")
            p.zrange(f"{self.prefix}:finished:{q}", -self.max_jobs, -1)
            p.zrange(f"{self.prefix}:failed:{q}", -self.max_jobs, -1)
            p.smembers(f"{self.prefix}:workers:{q}")
        return p.execute()

    def poll(self, now: datetime) -> list[QueueSnapshot]:
        """One snapshot per queue (two pipelined round trips for all queues together)."""
        now = ensure_utc(now)
        state = self._read_state()
        known_queues = {_text(k) for k in state[0]}
        per_q = [state[1 + 5 * i: 6 + 5 * i] for i in range(len(self.queues))]
        p = self.redis.pipeline(transaction=False)
        plan: list[tuple[int, str, str]] = []  # (queue index, "job"|"worker", id)
        for i, (q, (_, _, fin, fail, workers)) in enumerate(zip(self.queues, per_q, strict=True)):
            known = self._known.get(q, {})
            for jid in (_text(x) for x in [*fin, *fail]):
                if jid not in known:
                    p.hmget(f"{self.prefix}:job:{jid}", *_JOB_FIELDS)
                    plan.append((i, "job", jid))
            for w in (_text(x) for x in workers):  # members are worker keys
                p.hget(w, "last_heartbeat")
                plan.append((i, "worker", w))
        replies = p.execute() if plan else []
        fresh: list[dict[str, JobSample]] = [{} for _ in self.queues]
        live = [0] * len(self.queues)
        for (i, kind, ident), reply in zip(plan, replies, strict=True):
            if kind == "worker":
                live[i] += reply is not None
            elif (s := job_sample(ident, reply)) is not None:
                fresh[i][ident] = s
        return [self._snapshot(q, now, per_q[i], fresh[i], live[i],
                               f"{self.prefix}:queue:{q}" in known_queues)
                for i, q in enumerate(self.queues)]

    def _snapshot(self, q: str, now: datetime, st: list[Any], fresh: dict[str, JobSample],
                  workers: int, exists: bool) -> QueueSnapshot:
        backlog, wip, fin, fail, _ = st
        ids = [_text(x) for x in [*fin, *fail]]
        known = self._known.get(q, {})
        samples = {j: known.get(j) or fresh.get(j) for j in ids}
        self._known[q] = {j: s for j, s in samples.items() if s is not None}
        now_s = now.timestamp()
        jobs = tuple(s for s in self._known[q].values() if s.ended_at_s >= now_s - self.lookback_s)
        complete_since = now_s - self.result_ttl_s
        notes: list[str] = []
        for reg in (fin, fail):
            if len(reg) >= self.max_jobs:
                ends = [s.ended_at_s for j in map(_text, reg) if (s := samples.get(j))]
                complete_since = max(complete_since, min(ends, default=now_s))
                notes.append(f"registry holds more than {self.max_jobs} jobs; counted newest only")
        if not exists and not backlog and not wip and not ids and not workers:
            return QueueSnapshot(queue=q, recorded_at=now, source=self.name, exists=False)
        return QueueSnapshot(
            queue=q, recorded_at=now, source=self.name, backlog=float(backlog),
            in_progress=float(wip), workers=float(workers), jobs=jobs,
            jobs_complete_since_s=complete_since, notes=tuple(dict.fromkeys(notes)))


def _text(x: bytes | str) -> str:
    return x.decode() if isinstance(x, bytes) else x

