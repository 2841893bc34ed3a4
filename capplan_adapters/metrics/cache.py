"""The latest snapshot per queue, cached in Redis with a TTL for the planner.

Key ``capplan:snapshot:<queue>`` holds the JSON of the last :class:`QueueSnapshot`, with its
per-job timings folded into the summary fields (service-time mean/p95/scv, wait p95) and
dropped, so a cached snapshot stays small. It expires after ``ttl_s``: a planner that finds
nothing knows the metrics are stale (DESIGN: metrics gap → hold current scale) rather than
planning on old numbers. The collector also uses it as the previous snapshot of the next cycle.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from redis import Redis

from capplan_core.metrics.snapshot import QueueSnapshot
from capplan_core.metrics.snapshot_store import MemorySnapshots, SnapshotStore, summarised

__all__ = [
    "DEFAULT_TTL_S",
    "SNAPSHOT_PREFIX",
    "MemorySnapshots",
    "RedisSnapshots",
    "SnapshotStore",
    "cache_snapshot",
    "latest_snapshot",
    "snapshot_key",
    "summarised",
]

SNAPSHOT_PREFIX = "capplan:snapshot:"
DEFAULT_TTL_S = 600


def snapshot_key(queue: str, prefix: str = SNAPSHOT_PREFIX) -> str:
    """Redis key of a queue's cached snapshot."""
    return f"{prefix}{queue}"


def cache_snapshot(
    redis: Redis, snap: QueueSnapshot, *, ttl_s: int = DEFAULT_TTL_S, prefix: str = SNAPSHOT_PREFIX
) -> None:
    """Store ``snap`` as the latest snapshot of its queue for ``ttl_s`` seconds."""
    if ttl_s <= 0:
        raise ValueError(f"ttl_s must be > 0 (got {ttl_s!r})")
    redis.set(snapshot_key(snap.queue, prefix), json.dumps(summarised(snap).to_dict()), ex=ttl_s)


def latest_snapshot(
    redis: Redis, queue: str, *, prefix: str = SNAPSHOT_PREFIX
) -> QueueSnapshot | None:
    """The cached latest snapshot of ``queue``, or None when absent or expired."""
    raw = redis.get(snapshot_key(queue, prefix))
    if raw is None:
        return None
    return QueueSnapshot.from_dict(json.loads(raw))


class RedisSnapshots:
    """Previous snapshots in the Redis cache (survives between scheduled flow runs)."""

    def __init__(
        self, redis: Redis, *, ttl_s: int = DEFAULT_TTL_S, prefix: str = SNAPSHOT_PREFIX
    ) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self.prefix = prefix

    def get(self, queue: str) -> QueueSnapshot | None:
        return latest_snapshot(self.redis, queue, prefix=self.prefix)

    def put(self, snap: QueueSnapshot) -> None:
        cache_snapshot(self.redis, snap, ttl_s=self.ttl_s, prefix=self.prefix)

    def get_many(self, queues: Sequence[str]) -> dict[str, QueueSnapshot]:
        """Previous snapshots of ``queues`` in one MGET (absent ones left out)."""
        if not queues:
            return {}
        raws = self.redis.mget([snapshot_key(q, self.prefix) for q in queues])
        return {
            q: QueueSnapshot.from_dict(json.loads(raw))
            for q, raw in zip(queues, raws, strict=True)
            if raw is not None
        }

    def put_many(self, snaps: Sequence[QueueSnapshot]) -> None:
        """Store several snapshots in one pipelined round trip."""
        p = self.redis.pipeline(transaction=False)
        for snap in snaps:
            p.set(
                snapshot_key(snap.queue, self.prefix),
                json.dumps(summarised(snap).to_dict()),
                ex=self.ttl_s,
            )
        p.execute()
