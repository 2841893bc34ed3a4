"""capplan's instrumentation convention for plain Redis-list queues (any language can follow).

For a queue whose jobs live in the Redis list ``<list key>`` (LPUSH by producers, BRPOP by
workers), producers and workers also maintain these keys (``<q>`` is the queue name):

=====================================  =======================================================
key                                    written by / how
=====================================  =======================================================
``capplan:q:<q>:enqueued``             producer: ``INCR`` once per job pushed (same MULTI)
``capplan:q:<q>:completed``            worker: ``INCR`` once per job finished (ok or failed)
``capplan:q:<q>:samples``              worker: ``LPUSH "<ended_at>,<service_s>,<wait_s>"`` then
                                       ``LTRIM 0 <cap-1>`` (cap 1000); ``ended_at`` is Unix
                                       epoch seconds, ``wait_s`` may be empty when unknown
``capplan:q:<q>:inflight``             worker: ``INCR`` when a job starts, ``DECR`` when done
``capplan:q:<q>:workers``              worker: ``ZADD <now epoch s> <worker id>`` every beat
``capplan:q:<q>:hb:<worker id>``       worker: ``SET 1 EX <ttl>`` every beat (ttl 30 s)
=====================================  =======================================================

Producers call :func:`declare_queue` once (``SETNX`` the counters to 0); a counter that is
absent is "unknown", not 0. A worker beats at least every ``ttl / 3`` seconds; the reader
counts workers whose last beat is younger than the ttl (``ZCOUNT``). A worker that stops
cleanly calls :func:`worker_stopped`.
Counters only ever increase; capplan treats a decrease as a reset (restart, flush).
"""

from __future__ import annotations

import time
from typing import Any

from redis import Redis

KEY_PREFIX = "capplan:q:"
SAMPLES_CAP = 1000
HEARTBEAT_TTL_S = 30


def key(queue: str, suffix: str) -> str:
    """The instrumentation key ``capplan:q:<queue>:<suffix>``."""
    return f"{KEY_PREFIX}{queue}:{suffix}"


def declare_queue(redis: Redis, queue: str) -> None:
    """Producer setup: create the counters at 0 if absent, so the first interval is known."""
    p = redis.pipeline(transaction=False)
    for suffix in ("enqueued", "completed", "inflight"):
        p.setnx(key(queue, suffix), 0)
    p.execute()


def enqueue(redis: Redis, queue: str, payload: bytes | str, *, list_key: str | None = None) -> None:
    """Producer: push ``payload`` onto the queue's list and count it, atomically."""
    p = redis.pipeline(transaction=True)
    p.lpush(list_key or queue, payload)
    p.incr(key(queue, "enqueued"))
    p.execute()


def job_started(redis: Redis, queue: str) -> None:
    """Worker: a job was taken from the list and is now running."""
    redis.incr(key(queue, "inflight"))


def job_finished(
    redis: Redis,
    queue: str,
    service_s: float,
    *,
    wait_s: float | None = None,
    ended_at_s: float | None = None,
    cap: int = SAMPLES_CAP,
) -> None:
    """Worker: a job finished after ``service_s`` seconds (after waiting ``wait_s`` in the queue).

    Counts the completion, records a timing sample in the capped samples list and decrements
    the in-flight counter, in one MULTI.
    """
    end = time.time() if ended_at_s is None else ended_at_s
    sample = f"{end:.6f},{service_s:.6f},{'' if wait_s is None else f'{wait_s:.6f}'}"
    p = redis.pipeline(transaction=True)
    p.incr(key(queue, "completed"))
    p.lpush(key(queue, "samples"), sample)
    p.ltrim(key(queue, "samples"), 0, cap - 1)
    p.decr(key(queue, "inflight"))
    p.execute()


def heartbeat(
    redis: Redis,
    queue: str,
    worker_id: str,
    *,
    ttl_s: int = HEARTBEAT_TTL_S,
    now_s: float | None = None,
) -> None:
    """Worker: "I am alive and consuming ``queue``" (call at least every ``ttl_s / 3`` s)."""
    now = time.time() if now_s is None else now_s
    p = redis.pipeline(transaction=False)
    p.zadd(key(queue, "workers"), {worker_id: now})
    p.set(key(queue, f"hb:{worker_id}"), 1, ex=ttl_s)
    # forget workers silent for 10 ttls so the set does not grow without bound
    p.zremrangebyscore(key(queue, "workers"), 0, now - 10 * ttl_s)
    p.execute()


def worker_stopped(redis: Redis, queue: str, worker_id: str) -> None:
    """Worker: clean shutdown; it stops counting at once instead of after the ttl."""
    p = redis.pipeline(transaction=False)
    p.zrem(key(queue, "workers"), worker_id)
    p.delete(key(queue, f"hb:{worker_id}"))
    p.execute()


def parse_sample(raw: Any) -> tuple[float, float, float | None] | None:
    """``"<ended_at>,<service_s>,<wait_s>"`` → (ended_at_s, service_s, wait_s); None if garbled."""
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    parts = text.split(",")
    try:
        end, service = float(parts[0]), float(parts[1])
        wait = float(parts[2]) if len(parts) > 2 and parts[2] else None
    except (ValueError, IndexError):
        return None
    return end, service, wait
