"""Where the collector keeps each queue's previous snapshot: the port and the in-process store.

:class:`SnapshotStore` is the port; :class:`MemorySnapshots` keeps snapshots in this process
(a long-running collector, tests); the Redis cache that survives between scheduled runs is an
adapter (:class:`capplan_adapters.metrics.cache.RedisSnapshots`). :func:`summarised` folds a
snapshot's per-job timings into its summary fields, so a kept snapshot stays small.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

from capplan_core.metrics.rates import mean_and_scv, quantile
from capplan_core.metrics.snapshot import QueueSnapshot


def summarised(snap: QueueSnapshot) -> QueueSnapshot:
    """``snap`` with its job timings folded into the summary fields, and the jobs dropped."""
    if not snap.jobs:
        return snap
    service = sorted(j.service_s for j in snap.jobs if j.service_s is not None)
    wait = sorted(j.wait_s for j in snap.jobs if j.wait_s is not None)
    mean, scv = mean_and_scv(service)
    return replace(
        snap,
        jobs=(),
        service_time_mean_s=snap.service_time_mean_s if mean is None else mean,
        service_time_p95_s=quantile(service, 0.95) if service else snap.service_time_p95_s,
        service_time_scv=snap.service_time_scv if scv is None else scv,
        wait_p95_s=quantile(wait, 0.95) if wait else snap.wait_p95_s,
    )


class SnapshotStore(Protocol):
    """Where the collector keeps the previous snapshot of each queue."""

    def get(self, queue: str) -> QueueSnapshot | None: ...

    def put(self, snap: QueueSnapshot) -> None: ...

    def get_many(self, queues: Sequence[str]) -> dict[str, QueueSnapshot]: ...


class MemorySnapshots:
    """In-process previous snapshots (a long-running collector, tests)."""

    def __init__(self) -> None:
        self._snaps: dict[str, QueueSnapshot] = {}

    def get(self, queue: str) -> QueueSnapshot | None:
        return self._snaps.get(queue)

    def put(self, snap: QueueSnapshot) -> None:
        self._snaps[snap.queue] = snap

    def get_many(self, queues: Sequence[str]) -> dict[str, QueueSnapshot]:
        return {q: s for q in queues if (s := self._snaps.get(q)) is not None}
