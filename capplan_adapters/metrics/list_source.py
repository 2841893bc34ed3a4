"""Plain Redis-list queues that follow capplan's instrumentation convention (``instrument.py``).

Two pipelined round trips read, per queue: ``LLEN`` of the list, the ``enqueued``/``completed``
/``inflight`` counters and ``ZCOUNT`` of workers beating within the heartbeat ttl; then the
timing samples added since the previous poll. Without the convention only the backlog is
visible.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from redis import Redis

from capplan_adapters.metrics import instrument
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
        max_samples_per_poll: newest timing samples read per queue and poll (percentiles of
            a busier interval come from its newest completions).
    """

    name = "list"

    def __init__(
        self,
        redis: Redis,
        queues: Sequence[str],
        *,
        list_keys: Mapping[str, str] | None = None,
        heartbeat_ttl_s: float = instrument.HEARTBEAT_TTL_S,
        max_samples_per_poll: int = 200,
    ) -> None:
        self.redis = redis
        self.queues = list(queues)
        self.list_keys = dict(list_keys or {})
        self.heartbeat_ttl_s = heartbeat_ttl_s
        self.max_samples = max_samples_per_poll
        self._last_completed: dict[str, float] = {}

    def seed(self, previous: Mapping[str, QueueSnapshot]) -> None:
        """Take the completed counters of the previous cycle's snapshots (e.g. from the cache),
        so a fresh process reads only the samples added since then."""
        for q in self.queues:
            snap = previous.get(q)
            if snap is not None and snap.completed_total is not None:
                self._last_completed.setdefault(q, snap.completed_total)

    def _run(self, cmds: list[tuple[str, tuple[Any, ...]]], pipelined: bool) -> list[Any]:
        if not pipelined:  # the baseline the benchmark compares against
            return [getattr(self.redis, name)(*args) for name, args in cmds]
        p = self.redis.pipeline(transaction=False)
        for name, args in cmds:
            getattr(p, name)(*args)
        return p.execute()

    def poll(self, now: datetime, *, pipelined: bool = True) -> list[QueueSnapshot]:
        """One snapshot per queue in two round trips for all queues together.

        The first reads backlog, counters and live workers; the second reads only the timing
        samples added since this source's previous poll (at most ``max_samples_per_poll``
        newest per queue), so a cycle's cost follows the traffic, not the list caps. Hence a
        snapshot's ``jobs`` are the completions since the previous poll (or since the
        previous cycle's snapshot given to :meth:`seed`): keep every snapshot you poll.
        ``pipelined=False`` sends one command per round trip (the benchmark's baseline).
        """
        now = ensure_utc(now)
        now_s = now.timestamp()
        k = instrument.key
        cmds: list[tuple[str, tuple[Any, ...]]] = []
        for q in self.queues:
            cmds += [
                ("llen", (self.list_keys.get(q, q),)),
                ("mget", ([k(q, "enqueued"), k(q, "completed"), k(q, "inflight")],)),
                ("zcount", (k(q, "workers"), now_s - self.heartbeat_ttl_s, "+inf")),
            ]
        first = self._run(cmds, pipelined)
        wanted = []
        for i, q in enumerate(self.queues):
            done = _num(first[3 * i + 1][1])
            last = self._last_completed.get(q)
            # twice the new completions (at least 20): jobs finishing between the two round
            # trips push older samples down; overlap is harmless (samples are deduplicated)
            new = (
                self.max_samples
                if done is None or last is None or done < last
                else min(self.max_samples, 2 * int(done - last) + 20)
                if done > last
                else 0
            )
            wanted.append(new)
            if done is not None:
                self._last_completed[q] = done
        cmds = [
            ("lrange", (k(q, "samples"), 0, n - 1))
            for q, n in zip(self.queues, wanted, strict=True)
            if n > 0
        ]
        samples = iter(self._run(cmds, pipelined) if cmds else [])
        return [
            self._snapshot(q, now, first[3 * i : 3 * i + 3], next(samples) if wanted[i] > 0 else [])
            for i, q in enumerate(self.queues)
        ]

    def _snapshot(
        self, q: str, now: datetime, r: list[Any], raw_samples: list[Any]
    ) -> QueueSnapshot:
        backlog, (enq, done, inflight), workers = r
        jobs = []
        for raw in raw_samples:
            parsed = instrument.parse_sample(raw)
            if parsed is not None:
                end, service, wait = parsed
                # the sample text (microsecond end time) identifies it across polls
                jobs.append(
                    JobSample(
                        job_id=f"{end:.6f}/{service:.6f}",
                        ended_at_s=end,
                        service_s=service,
                        wait_s=wait,
                    )
                )
        instrumented = enq is not None or done is not None
        notes = (
            ()
            if instrumented
            else ("no capplan instrumentation keys: only the backlog is visible",)
        )
        if not instrumented and not backlog and not workers:
            return QueueSnapshot(queue=q, recorded_at=now, source=self.name, exists=False)
        return QueueSnapshot(
            queue=q,
            recorded_at=now,
            source=self.name,
            backlog=float(backlog),
            in_progress=_num(inflight),
            workers=float(workers),
            enqueued_total=_num(enq),
            completed_total=_num(done),
            jobs=tuple(jobs),
            notes=notes,
        )
