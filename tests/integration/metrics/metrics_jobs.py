"""Job functions and worker loops run by the metrics integration tests in other processes.

Importable by ``rq worker`` (``--path`` this directory) and by ``multiprocessing`` children.
"""

from __future__ import annotations

import time

import redis


def sleep_job(service_s: float, truth_key: str, url: str) -> float:
    """An RQ job: sleep ``service_s``; record its own start time (ground truth of the wait)."""
    started = time.time()
    redis.Redis.from_url(url).rpush(truth_key, f"{started:.6f}")
    time.sleep(service_s)
    return service_s


def stream_consumer(
    url: str, stream: str, group: str, name: str, service_s: float, stop_key: str
) -> None:
    """A stream consumer: XREADGROUP one entry, work ``service_s``, XACK; until ``stop_key``."""
    r = redis.Redis.from_url(url)
    while not r.exists(stop_key):
        got = r.xreadgroup(group, name, {stream: ">"}, count=1, block=200)
        for _, entries in got or []:
            for entry_id, _fields in entries:
                time.sleep(service_s)
                r.xack(stream, group, entry_id)


def list_worker(url: str, queue: str, worker_id: str, service_s: float, stop_key: str) -> None:
    """A plain-list worker following capplan's instrumentation convention."""
    from capplan_adapters.metrics import instrument

    r = redis.Redis.from_url(url)
    last_beat = 0.0
    while not r.exists(stop_key):
        if time.time() - last_beat > 1.0:
            instrument.heartbeat(r, queue, worker_id, ttl_s=5)
            last_beat = time.time()
        got = r.brpop([queue], timeout=1)
        if got is None:
            continue
        enqueued_at = float(got[1])
        start = time.time()
        instrument.job_started(r, queue)
        time.sleep(service_s)
        instrument.job_finished(r, queue, time.time() - start, wait_s=start - enqueued_at)
    instrument.worker_stopped(r, queue, worker_id)
