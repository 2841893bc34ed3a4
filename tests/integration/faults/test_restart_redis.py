"""Redis restarted mid-collect (issue 12, point 10), on a private ``redis-server``.

Cycles of the real collect path (:func:`capplan_core.metrics.collect.collect_once` with the
list source and the Redis snapshot cache, as ``collect-live`` runs it) on a simulated minute
clock, with producers and workers counting jobs in Redis. Redis (no persistence) is killed
again and again: half the time mid-collect (after the poll, before the snapshot cache write),
half the time between cycles; it stays down for one cycle, then restarts empty. Checks over the
whole history: no negative rate, a row for every cycle Redis answered (nothing lost beyond the
outage), and every known arrival rate equal to the jobs enqueued in its interval.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from capplan_adapters.metrics import instrument
from capplan_adapters.metrics.cache import RedisSnapshots
from capplan_adapters.metrics.list_source import ListSource
from capplan_adapters.store.db import open_store
from capplan_core.metrics.collect import collect_once
from capplan_core.metrics.snapshot import QueueSnapshot
from tests.integration.faults.restart_services import PrivateRedis, private_redis  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.slow]

QUEUES = ("emails", "reports")
T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
INTERVAL_S = 60.0
CYCLES = 40
KILL_MID_COLLECT = {5, 13, 21, 29}  # killed after the poll, before the cache write
KILL_BETWEEN = {9, 17, 25, 33}  # killed before the cycle's poll


def _produce(r: Redis, i: int) -> dict[str, int]:
    """Enqueue some jobs per queue and let workers finish some; jobs enqueued per queue."""
    enqueued = {}
    for n, q in enumerate(QUEUES):
        k = 3 + (i + n) % 5
        for _ in range(k):
            instrument.enqueue(r, q, b"job")
        for _ in range(min(2 + i % 3, int(r.llen(q)))):
            r.rpop(q)
            instrument.job_started(r, q)
            instrument.job_finished(r, q, 0.5, wait_s=1.0)
        enqueued[q] = k
    return enqueued


class KillAfterPoll:
    """The list source, whose Redis dies right after one poll: mid-collect."""

    def __init__(self, inner: ListSource, redis: PrivateRedis) -> None:
        self.inner, self.redis = inner, redis
        self.name, self.queues = inner.name, inner.queues
        self.kill_next = False

    def seed(self, previous: dict[str, QueueSnapshot]) -> None:
        self.inner.seed(previous)

    def poll(self, now: datetime) -> list[QueueSnapshot]:
        snaps = self.inner.poll(now)
        if self.kill_next:
            self.kill_next = False
            self.redis.stop()
        return snaps


def test_redis_restarts_mid_collect_give_no_negative_rates_and_lose_no_rows(
    private_redis: PrivateRedis,  # noqa: F811
    tmp_path: Path,
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'collect.db'}")
    r = Redis.from_url(private_redis.url, socket_timeout=2, socket_connect_timeout=2)
    for q in QUEUES:
        instrument.declare_queue(r, q)
    source = KillAfterPoll(ListSource(r, QUEUES), private_redis)
    cache = RedisSnapshots(r, ttl_s=3600)
    answered: set[tuple[str, datetime]] = set()
    enqueued_in: dict[tuple[str, datetime], int] = {}
    down_until = -1
    results: list[Any] = []
    for i in range(CYCLES):
        now = T0 + timedelta(seconds=INTERVAL_S * i)
        if i == down_until:  # back after one cycle down, empty (no persistence)
            private_redis.start()
            for q in QUEUES:
                instrument.declare_queue(r, q)
        up = private_redis.proc is not None
        if up:
            for q, k in _produce(r, i).items():
                enqueued_in[(q, now)] = k
        if i in KILL_BETWEEN:
            private_redis.stop()
            down_until, up = i + 2, False
        if i in KILL_MID_COLLECT:
            source.kill_next, down_until = True, i + 2
        result = collect_once(
            [source], store.record_metrics, now, previous=cache, interval_s=INTERVAL_S
        )
        results.append(result)
        if up:
            answered.update((q, now) for q in QUEUES)
            assert {m.queue for m in result.metrics} == set(QUEUES), result.errors
        else:
            assert result.rows == [] and result.errors

    rows = [m for q in QUEUES for m in store.metrics(q)]
    got = {(m.queue_name, m.recorded_at) for m in rows}
    assert got == answered  # nothing lost beyond the outage, nothing invented during it
    negatives = [
        m
        for m in rows
        if any(v is not None and v < 0 for v in (m.arrival_rate, m.service_rate, m.backlog))
    ]
    assert negatives == []
    known = [m for m in rows if m.arrival_rate is not None]
    for m in known:  # a known rate is exactly the jobs enqueued in its interval
        assert m.arrival_rate * INTERVAL_S == pytest.approx(
            enqueued_in[(m.queue_name, m.recorded_at)]
        )
    unknown_after_restart = len(rows) - len(known)
    cache_errors = sum(1 for res in results for e in res.errors if e.source == "cache")
    outage_cycles = CYCLES - len(answered) // len(QUEUES)
    assert unknown_after_restart >= len(QUEUES) * (len(KILL_MID_COLLECT) + len(KILL_BETWEEN))
    print(
        f"\nRedis restarts mid-collect: {len(KILL_MID_COLLECT)} mid-collect + "
        f"{len(KILL_BETWEEN)} between cycles over {CYCLES} cycles x {len(QUEUES)} queues; "
        f"{len(rows)} rows = every answered cycle, {outage_cycles} outage cycles without "
        f"rows, {len(known)} known rates all exact, {unknown_after_restart} unknown "
        f"(first interval after a restart), 0 negative, {cache_errors} cache errors "
        "reported"
    )
