"""StreamSource and ListSource against real consumer processes on the real Redis."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from conftest import spawn_python

from capplan_adapters.metrics import instrument
from capplan_adapters.metrics.list_source import ListSource
from capplan_adapters.metrics.stream_source import StreamSource
from capplan_core.metrics.rates import window_metrics
from tests.service_helpers import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SERVICE_S = 0.25
WORKERS = 3
RATE_PER_S = 6.0
PRODUCE_S = 6.0


def now() -> datetime:
    return datetime.now(UTC)


def produce(push, source, n: int) -> list:
    """Push ``n`` jobs at RATE_PER_S, polling the source every 0.5 s; returns the snapshots."""
    snaps = [source.poll(now())[0]]
    t0 = time.time()
    next_poll = t0 + 0.5
    for i in range(n):
        time.sleep(max(0.0, t0 + i / RATE_PER_S - time.time()))
        push(i)
        if time.time() >= next_poll:
            snaps.append(source.poll(now())[0])
            next_poll += 0.5
    return snaps


def test_stream_source_measures_group_consumption(redis, redis_url, tid, processes) -> None:
    stream, group, stop = f"events-{tid}", "workers", f"stop:{tid}"
    redis.xgroup_create(stream, group, id="$", mkstream=True)
    for i in range(WORKERS):
        processes.append(
            spawn_python(
                "import metrics_jobs; metrics_jobs.stream_consumer("
                f"{redis_url!r}, {stream!r}, {group!r}, 'c{i}', {SERVICE_S}, {stop!r})"
            )
        )
    src = StreamSource(redis, [stream], group=group, consumer_idle_s=5)

    def warmed_up() -> bool:
        # Redis 7.0 lists a consumer only after its first delivery: feed until all 3 show
        redis.xadd(stream, {"job": "warm-up"})
        time.sleep(0.1)
        return src.poll(now())[0].workers == WORKERS

    wait_until(warmed_up, 30, "3 stream consumers")
    wait_until(lambda: src.poll(now())[0].in_progress == 0, 10, "warm-up drained")

    n = int(RATE_PER_S * PRODUCE_S)
    snaps = produce(lambda i: redis.xadd(stream, {"job": i}), src, n)
    snaps.append(src.poll(now())[0])
    row = window_metrics(snaps)
    elapsed = (snaps[-1].recorded_at - snaps[0].recorded_at).total_seconds()
    assert row.arrival_rate == pytest.approx(n / elapsed, rel=1e-6)  # entries-added is exact
    acked = snaps[-1].completed_total - snaps[0].completed_total
    assert row.completion_rate == pytest.approx(acked / elapsed)
    assert row.workers == WORKERS
    # Little's law from the polled pending counts: a noisy estimate, hence 40 %
    assert row.service_time_mean_s == pytest.approx(SERVICE_S, rel=0.4)
    assert row.wait_p95_s is None  # streams keep no per-job timings
    redis.set(stop, 1)


def test_instrumented_list_source_matches_ground_truth(redis, redis_url, tid, processes) -> None:
    queue, stop = f"thumbs-{tid}", f"stop:{tid}"
    for i in range(WORKERS):
        processes.append(
            spawn_python(
                "import metrics_jobs; metrics_jobs.list_worker("
                f"{redis_url!r}, {queue!r}, 'w{i}-{tid}', {SERVICE_S}, {stop!r})"
            )
        )
    instrument.declare_queue(redis, queue)
    src = ListSource(redis, [queue], heartbeat_ttl_s=5)
    wait_until(lambda: src.poll(now())[0].workers == WORKERS, 30, "3 list workers beating")

    n = int(RATE_PER_S * PRODUCE_S)
    snaps = produce(lambda i: instrument.enqueue(redis, queue, f"{time.time():.6f}"), src, n)

    def drained() -> bool:
        # keep every snapshot: each carries the timing samples added since the previous poll
        snaps.append(src.poll(now())[0])
        return snaps[-1].completed_total == n

    wait_until(drained, 20, "list drained")
    row = window_metrics(snaps)
    elapsed = (snaps[-1].recorded_at - snaps[0].recorded_at).total_seconds()
    assert row.arrival_rate == pytest.approx(n / elapsed, rel=1e-6)
    assert row.completion_rate == pytest.approx(n / elapsed, rel=1e-6)
    assert row.samples == n
    assert row.service_time_mean_s == pytest.approx(SERVICE_S, rel=0.1)
    assert row.wait_p95_s is not None and 0 <= row.wait_p95_s < SERVICE_S
    assert (row.workers, row.backlog, row.in_progress) == (WORKERS, 0, 0)
    redis.set(stop, 1)
    wait_until(lambda: src.poll(now())[0].workers == 0, 10, "workers deregistered")


def test_list_without_instrumentation_shows_backlog_only(redis, tid) -> None:
    queue = f"plain-{tid}"
    redis.lpush(queue, "a", "b", "c")
    snap = ListSource(redis, [queue]).poll(now())[0]
    assert snap.backlog == 3 and snap.enqueued_total is None
    assert "only the backlog" in snap.notes[0]


def test_stream_with_two_groups_needs_a_group_name(redis, tid) -> None:
    stream = f"two-{tid}"
    redis.xgroup_create(stream, "a", id="$", mkstream=True)
    redis.xgroup_create(stream, "b", id="$")
    snap = StreamSource(redis, [stream]).poll(now())[0]
    assert snap.error is not None and "name one" in snap.error
    missing = StreamSource(redis, [f"none-{tid}"]).poll(now())[0]
    assert missing.exists is False and missing.error is None
