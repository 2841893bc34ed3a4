"""Plain Redis-list queues that follow capplan's instrumentation convention (``instrument.py``).

One pipelined round trip reads, per queue: ``LLEN`` of the list, the ``enqueued``/``completed``
/``inflight`` counters, the capped timing samples and ``ZCOUNT`` of workers beating within the
heartbeat ttl. Without the convention only the backlog is visible.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from redis import Redis

from capplan_core.metrics import instrument
from capplan_core.metrics.snapshot import JobSample, QueueSnapshot, ensure_utc


def _num(raw: Any) -> float | None:
    return None if raw is None else float(raw)


class ListSource:
    """Metrics of instrumented Redis lists.

    Args:
        redis: connection.
        queues: queue names (the instrumentation keys use these).
        list_keys: list key per queue when it differs from the queue name.
        heartbeat_ttl_s: a worker whose last beat is older than this is not counted.
    """

    name = "list"

    def __init__(self, redis: Redis, queues: Sequence[str], *,
                 list_keys: Mapping[str, str] | None = None,
                 heartbeat_ttl_s: float = instrument.HEARTBEAT_TTL_S) -> None:
        self.redis = redis
        self.queues = list(queues)
        self.list_keys = dict(list_keys or {})
        self.heartbeat_ttl_s = heartbeat_ttl_s

    def poll(self, now: datetime, *, pipelined: bool = True) -> list[QueueSnapshot]:
        """One snapshot per queue; ``pipelined=False`` is the one-command-per-trip baseline."""
        now = ensure_utc(now)
        now_s = now.timestamp()
        k = instrument.key
        cmds: list[tuple[str, tuple[Any, ...]]] = []
        for q in self.queues:
            cmds += [
                ("llen", (self.list_keys.get(q, q),)),
                ("mget", ([k(q, "enqueued"), k(q, "completed"), k(q, "inflight")],)),
                ("lrange", (k(q, "samples"), 0, instrument.SAMPLES_CAP - 1)),
                ("zcount", (k(q, "workers"), now_s - self.heartbeat_ttl_s, "+inf")),
            ]
        if pipelined:
            p = self.redis.pipeline(transaction=False)
            for name, args in cmds:
                getattr(p, name)(*args)
            replies = p.execute()
        else:
            replies = [getattr(self.redis, name)(*args) for name, args in cmds]
        return [self._snapshot(q, now, replies[4 * i: 4 * i + 4])
                for i, q in enumerate(self.queues)]

    def _snapshot(self, q: str, now: datetime, r: list[Any]) -> QueueSnapshot:
        backlog, (enq, done, inflight), raw_samples, workers = r
        jobs = []
        for raw in raw_samples:
            parsed = instrument.parse_sample(raw)
            if parsed is not None:
                end, service, wait = parsed
                # the sample text (microsecond end time) identifies it across polls
                jobs.append(JobSample(job_id=f"{end:.6f}/{service:.6f}",
                                      ended_at_s=end, service_s=service, wait_s=wait))
        instrumented = enq is not None or done is not None
        notes = () if instrumented else (
            "no capplan instrumentation keys: only the backlog is visible",)
        if not instrumented and not backlog and not workers:
            return QueueSnapshot(queue=q, recorded_at=now, source=self.name, exists=False)
        return QueueSnapshot(
            queue=q, recorded_at=now, source=self.name, backlog=float(backlog),
            in_progress=_num(inflight), workers=float(workers),
            enqueued_total=_num(enq), completed_total=_num(done), jobs=tuple(jobs), notes=notes)
