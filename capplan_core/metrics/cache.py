"""The latest snapshot per queue, cached in Redis with a TTL for the planner.

Key ``capplan:snapshot:<queue>`` holds the JSON of the last :class:`QueueSnapshot` (timing
samples capped). It expires after ``ttl_s``: a planner that finds nothing knows the metrics
are stale (DESIGN: metrics gap → hold current scale) rather than planning on old numbers.
The collector also uses it as the previous snapshot of the next cycle.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Protocol

from redis import Redis

from capplan_core.metrics.snapshot import QueueSnapshot

SNAPSHOT_PREFIX = "capplan:snapshot:"
DEFAULT_TTL_S = 600
MAX_CACHED_JOBS = 1000


def snapshot_key(queue: str, prefix: str = SNAPSHOT_PREFIX) -> str:
    """Redis key of a queue's cached snapshot."""
    return f"{prefix}{queue}"


def cache_snapshot(redis: Redis, snap: QueueSnapshot, *, ttl_s: int = DEFAULT_TTL_S,
                   prefix: str = SNAPSHOT_PREFIX) -> None:
    """Store ``snap`` as the latest snapshot of its queue for ``ttl_s`` seconds."""
    if ttl_s <= 0:
        raise ValueError(f"ttl_s must be > 0 (got {ttl_s!r})")
    jobs = sorted(snap.jobs, key=lambda j: j.ended_at_s)[-MAX_CACHED_JOBS:]
    payload = json.dumps(replace(snap, jobs=tuple(jobs)).to_dict())
    redis.set(snapshot_key(snap.queue, prefix), payload, ex=ttl_s)


def latest_snapshot(redis: Redis, queue: str, *, prefix: str = SNAPSHOT_PREFIX
                    ) -> QueueSnapshot | None:
    """The cached latest snapshot of ``queue``, or None when absent or expired."""
    raw = redis.get(snapshot_key(queue, prefix))
    if raw is None:
        return None
    return QueueSnapshot.from_dict(json.loads(raw))


class SnapshotStore(Protocol):
    """Where the collector keeps the previous snapshot of each queue."""

    def get(self, queue: str) -> QueueSnapshot | None: ...

    def put(self, snap: QueueSnapshot) -> None: ...


class MemorySnapshots:
    """In-process previous snapshots (a long-running collector, tests)."""

    def __init__(self) -> None:
        self._snaps: dict[str, QueueSnapshot] = {}

    def get(self, queue: str) -> QueueSnapshot | None:
        return self._snaps.get(queue)

    def put(self, snap: QueueSnapshot) -> None:
        self._snaps[snap.queue] = snap


class RedisSnapshots:
    """Previous snapshots in the Redis cache (survives between scheduled flow runs)."""

    def __init__(self, redis: Redis, *, ttl_s: int = DEFAULT_TTL_S,
                 prefix: str = SNAPSHOT_PREFIX) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self.prefix = prefix

    def get(self, queue: str) -> QueueSnapshot | None:
        return latest_snapshot(self.redis, queue, prefix=self.prefix)

    def put(self, snap: QueueSnapshot) -> None:
        cache_snapshot(self.redis, snap, ttl_s=self.ttl_s, prefix=self.prefix)
