"""RQSource against real RQ workers (separate processes) on the real Redis.

The test enqueues jobs on a known schedule with a known service time; every job also records
when it really started, which is the ground truth of its queue wait.
"""

from __future__ import annotations

import os
import subprocess
import time
from datetime import UTC, datetime

import numpy as np
import pytest
from conftest import HERE
from rq import Queue

from capplan_adapters.metrics.rq_source import RQSource
from capplan_core.metrics.rates import snapshots_to_metrics, window_metrics
from tests.service_helpers import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SERVICE_S = 0.25
WORKERS = 3


def start_rq_workers(redis_url: str, queue: str, tid: str, n: int, procs: list) -> list:
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    started = []
    for i in range(n):
        p = subprocess.Popen(
            [
                os.path.join(os.path.dirname(os.sys.executable), "rq"),
                "worker",
                "-u",
                redis_url,
                "--name",
                f"w-{tid}-{i}",
                "--path",
                str(HERE),
                queue,
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(p)
        started.append(p)
    return started


def now() -> datetime:
    return datetime.now(UTC)


def test_rq_source_measures_arrivals_service_waits_and_workers(
    redis, redis_url, tid, processes
) -> None:
    qname = f"emails-{tid}"
    q = Queue(qname, connection=redis)
    workers = start_rq_workers(redis_url, qname, tid, WORKERS, processes)
    src = RQSource(redis, [qname])
    wait_until(lambda: src.poll(now())[0].workers == WORKERS, 30, "3 RQ workers registered")

    truth_key = f"truth:{tid}"
    enqueued_at: dict[str, float] = {}
    snaps = [src.poll(now())]
    # a burst of 12 (waits build up: 3 workers × 0.25 s) then a steady 6 jobs/s for 6 s
    schedule = [0.0] * 12 + [0.2 + i / 6 for i in range(36)]
    t_start = time.time()
    for i, offset in enumerate(schedule):
        time.sleep(max(0.0, t_start + offset - time.time()))
        job_id = f"{tid}-{i}"
        enqueued_at[job_id] = time.time()
        q.enqueue(
            "metrics_jobs.sleep_job",
            SERVICE_S,
            f"{truth_key}:{job_id}",
            redis_url,
            job_id=job_id,
            result_ttl=600,
        )
        if i % 6 == 0:
            snaps.append(src.poll(now()))
    wait_until(lambda: len(q) == 0 and src.poll(now())[0].in_progress == 0, 30, "queue drained")
    snaps.append(src.poll(now()))
    n = len(schedule)

    row = window_metrics([s[0] for s in snaps])
    elapsed = (snaps[-1][0].recorded_at - snaps[0][0].recorded_at).total_seconds()
    # conservation over the whole window: every job arrived and completed inside it
    assert row.arrival_rate == pytest.approx(n / elapsed, abs=1.01 / elapsed)
    assert row.completion_rate == pytest.approx(n / elapsed, abs=1.01 / elapsed)
    assert row.samples == n
    # service time = ended_at − started_at: the sleep plus RQ's work-horse overhead
    assert SERVICE_S <= row.service_time_mean_s <= SERVICE_S * 1.4
    assert row.service_rate == pytest.approx(1 / row.service_time_mean_s)
    # waits: RQ's started_at − enqueued_at against the jobs' own start times
    truth = []
    for job_id, t_enq in enqueued_at.items():
        started = float(redis.lrange(f"{truth_key}:{job_id}", 0, 0)[0])
        truth.append(started - t_enq)
    true_p95 = float(np.percentile(truth, 95))
    assert true_p95 > 0.5  # the burst really queued
    assert row.wait_p95_s == pytest.approx(true_p95, abs=0.15)
    assert row.wait_p50_s == pytest.approx(float(np.percentile(truth, 50)), abs=0.15)
    assert row.workers == WORKERS and row.backlog == 0

    # a cleanly stopped worker leaves RQ's worker registry at once
    workers[0].terminate()
    workers[0].wait(timeout=15)
    assert src.poll(now())[0].workers == WORKERS - 1


def test_rq_flush_between_polls_gives_no_negative_rates(redis, redis_url, tid) -> None:
    qname = f"flush-{tid}"
    q = Queue(qname, connection=redis)
    for i in range(40):
        q.enqueue("metrics_jobs.sleep_job", 0, "x", redis_url, job_id=f"{tid}-{i}")
    src = RQSource(redis, [qname])
    before = src.poll(now())[0]
    assert before.backlog == 40
    for key in redis.scan_iter(match=f"*{tid}*"):
        redis.delete(key)
    q.enqueue("metrics_jobs.sleep_job", 0, "x", redis_url, job_id=f"{tid}-new")
    after = src.poll(now())[0]
    row = snapshots_to_metrics(before, after)
    assert row.arrival_rate is None and row.backlog == 1
    assert row.completion_rate == 0
    assert any("vanished" in n for n in row.notes)


def test_rq_unknown_queue_is_reported_missing(redis, tid) -> None:
    snap = RQSource(redis, [f"nope-{tid}"]).poll(now())[0]
    assert snap.exists is False
    assert snapshots_to_metrics(None, snap).notes[-1].endswith("not found at the source")
