"""RQ job results that expire before the next poll, against real RQ workers (issue 21, 6).

Jobs run with ``result_ttl=5`` while metrics are collected every 7 s: a job's record is gone
from RQ's finished registry before the next poll unless it ended in the last 5 s, so counting
records sees about 5/7 of the completions (the issue measured 0.71 jobs/s against 0.96). The
collector now reads the registries' expiry times, sees result_ttl 5 s < 7 s between polls,
counts completions from the workers' own job counters, and flags the row ``partial`` with the
reason. Each poll is a fresh source with the previous snapshot from the Redis cache (as in
the collect-metrics flow), and one worker stops mid-run: its last count is still read.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

import pytest
from conftest import HERE
from rq import Queue

from capplan_adapters.metrics.cache import RedisSnapshots
from capplan_adapters.metrics.rq_source import RQSource
from capplan_core.metrics.collect import collect_once
from tests.service_helpers import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

POLL_S = 7.0
RATE_PER_S = 1.0
SERVICE_S = 0.1


def _workers(redis_url: str, queue: str, tid: str, n: int, procs: list) -> list:
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    rq = os.path.join(os.path.dirname(sys.executable), "rq")
    started = [
        subprocess.Popen(
            [rq, "worker", "-u", redis_url, "--name", f"w-{tid}-{i}", "--path", str(HERE), queue],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(n)
    ]
    procs.extend(started)
    return started


def _collect(
    redis,
    qname: str,
    tid: str,
    result_ttl: int,
    redis_url: str,
    processes: list,
    *,
    stop_one_after_poll: int | None = None,
) -> tuple[list, int]:
    """Run the load, polling every POLL_S; returns (metrics rows, jobs enqueued)."""
    q = Queue(qname, connection=redis)
    workers = _workers(redis_url, qname, tid, 2, processes)
    cache = RedisSnapshots(redis, prefix=f"capplan:snapshot:{tid}:")
    wait_until(
        lambda: RQSource(redis, [qname]).poll(datetime.now(UTC))[0].workers == 2,
        30,
        "2 RQ workers registered",
    )
    enqueued: list[float] = []
    stop = threading.Event()

    def load() -> None:
        t0 = time.time()
        while not stop.is_set():
            n = len(enqueued)
            stop.wait(max(0.0, t0 + 0.5 + n / RATE_PER_S - time.time()))
            if stop.is_set():
                return
            q.enqueue(
                "metrics_jobs.sleep_job",
                SERVICE_S,
                f"truth:{tid}",
                redis_url,
                job_id=f"{tid}-{n}",
                result_ttl=result_ttl,
            )
            enqueued.append(time.time())

    rows = []
    t_poll = time.time()
    collect_once([RQSource(redis, [qname])], None, datetime.now(UTC), previous=cache, interval_s=1)
    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    for i in range(1, 6):
        if i == 5:  # the last interval: no arrivals, the queue drains
            stop.set()
            loader.join()
        if stop_one_after_poll is not None and i == stop_one_after_poll + 1:
            time.sleep(POLL_S / 2 - 0.5)
            workers[0].terminate()  # a warm shutdown: RQ keeps its key 60 s
            workers[0].wait(timeout=20)
        time.sleep(max(0.0, t_poll + i * POLL_S - time.time()))
        result = collect_once(
            [RQSource(redis, [qname])], None, datetime.now(UTC), previous=cache, interval_s=1
        )
        assert not result.errors, result.errors
        rows.append(result.metrics[0])
    return rows, len(enqueued)


def test_expiring_results_are_detected_and_counted_from_the_workers(
    redis, redis_url, tid, processes
) -> None:
    rows, n = _collect(redis, f"ttl-{tid}", tid, 5, redis_url, processes, stop_one_after_poll=2)
    counted = sum(r.completion_rate * r.interval_s for r in rows)
    records = sum(r.samples for r in rows)  # what counting registry records saw
    true_rate = n / sum(r.interval_s for r in rows)
    print(
        f"\n{n} jobs: true {true_rate:.2f} jobs/s, counted {counted / n * true_rate:.2f} "
        f"jobs/s from the workers' counters, {records / n * true_rate:.2f} jobs/s from the "
        f"job records (the old count); partial {[r.partial for r in rows]}"
    )
    assert n >= 25
    assert counted == n  # every job, the stopped worker's last ones included
    assert records < 0.85 * n  # the records alone undercount
    busy, idle = rows[:-1], rows[-1]
    for r in busy:
        assert r.partial, r
        assert r.arrival_rate is not None and r.completion_rate is not None
        assert "result_ttl 5 s < 7 s between polls" in r.notes[0], r.notes
        assert "completions counted from the workers' job counters" in r.notes[0]
    # the last interval has no arrivals: nothing completed, so nothing was missed
    assert (idle.completion_rate, idle.partial) == (0.0, False)
    assert sum(r.arrival_rate * r.interval_s for r in rows) == pytest.approx(n, abs=0.01)
    assert rows[-1].workers == 1


def test_results_kept_longer_than_the_interval_are_complete(
    redis, redis_url, tid, processes
) -> None:
    rows, n = _collect(redis, f"keep-{tid}", tid, 600, redis_url, processes)
    assert sum(r.completion_rate * r.interval_s for r in rows) == n
    assert sum(r.samples for r in rows) == n
    assert not any(r.partial for r in rows), [r.notes for r in rows]
