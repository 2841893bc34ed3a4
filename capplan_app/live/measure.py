"""Measured queue waits of real RQ jobs (``started_at − enqueued_at``), read from Redis."""

from __future__ import annotations

from redis import Redis

from capplan_adapters.metrics.rq_source import parse_rq_time


def job_waits_s(
    redis: Redis, job_id_prefix: str, count: int, *, since: float, until: float
) -> list[float]:
    """Waits (s) of jobs ``{prefix}-0 … {prefix}-{count-1}`` enqueued in ``[since, until)``
    (epoch seconds). A job not started by ``until`` counts with ``until − enqueued_at`` (a
    lower bound: it waited at least that long), so a pool that falls behind cannot hide."""
    pipe = redis.pipeline(transaction=False)
    for n in range(count):
        pipe.hmget(f"rq:job:{job_id_prefix}-{n}", "enqueued_at", "started_at")
    waits: list[float] = []
    for enq_raw, start_raw in pipe.execute():
        enq = parse_rq_time(enq_raw)
        if enq is None or not since <= enq < until:
            continue
        start = parse_rq_time(start_raw)
        waits.append(max(0.0, (start if start is not None else until) - enq))
    return waits
