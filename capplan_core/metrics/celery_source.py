"""Celery with a Redis broker: what the broker shows, and plainly what it does not.

Visible in Redis (kombu's Redis transport layout):

* **backlog** -- ``LLEN <queue>`` plus kombu's priority sub-lists ``<queue>\\x06\\x16<n>``;
* **tasks taken but not acknowledged** -- ``ZCARD unacked_index``, for the whole broker (not
  per queue): with ``acks_late`` these are running or prefetched tasks;
* **workers** -- only through Celery *events* (``worker-heartbeat`` every 2 s, published on the
  ``celeryev`` fanout channel when workers run with ``-E``): with ``heartbeat_listen_s > 0``
  the source listens that long and counts distinct hostnames (all workers of the broker; the
  heartbeat does not say which queues a worker consumes).

Not visible: **prefetched tasks are not in the list** (each worker process holds up to
``worker_prefetch_multiplier`` tasks), arrivals, completions and task run times. Celery keeps
no counters in Redis. Use Prometheus for those (e.g. celery-exporter's
``celery_task_received_total`` / ``celery_task_succeeded_total`` / ``celery_task_runtime``
histogram) through ``SourceSpec.promql``; this source then supplies backlog only.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from redis import Redis

from capplan_core.metrics.snapshot import QueueSnapshot, ensure_utc

PRIORITY_SEP = "\x06\x16"
PRIORITY_STEPS = (3, 6, 9)  # kombu's default steps; priority 0 is the bare list
NOT_VISIBLE = ("celery: prefetched tasks are not in the list; arrivals, completions and run "
               "times are not in Redis (use Prometheus)")


def heartbeat_hostname(message: bytes | str) -> str | None:
    """The hostname in a kombu-wrapped ``worker-heartbeat`` event, or None for anything else."""
    try:
        env = json.loads(message)
        body = env["body"]
        if env.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        event = json.loads(body)
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(event, dict) or event.get("type") != "worker-heartbeat":
        return None
    host = event.get("hostname")
    return str(host) if host else None


class CelerySource:
    """Backlog (and optionally workers) of Celery queues on a Redis broker.

    Args:
        redis: connection to the broker database.
        queues: Celery queue names (default Celery queue: ``celery``).
        heartbeat_listen_s: seconds to listen for worker heartbeats per poll (0: do not).
    """

    name = "celery"

    def __init__(self, redis: Redis, queues: Sequence[str], *,
                 heartbeat_listen_s: float = 0.0) -> None:
        self.redis = redis
        self.queues = list(queues)
        self.heartbeat_listen_s = heartbeat_listen_s

    def _listen_workers(self) -> int:
        ps = self.redis.pubsub(ignore_subscribe_messages=True)
        ps.psubscribe("*celeryev*")
        hosts: set[str] = set()
        try:
            deadline = time.monotonic() + self.heartbeat_listen_s
            while (left := deadline - time.monotonic()) > 0:
                msg: Any = ps.get_message(timeout=left)
                if msg and (h := heartbeat_hostname(msg["data"])):
                    hosts.add(h)
        finally:
            ps.close()
        return len(hosts)

    def poll(self, now: datetime) -> list[QueueSnapshot]:
        """One snapshot per queue (one pipelined round trip, plus listening if enabled)."""
        now = ensure_utc(now)
        p = self.redis.pipeline(transaction=False)
        for q in self.queues:
            p.llen(q)
            for step in PRIORITY_STEPS:
                p.llen(f"{q}{PRIORITY_SEP}{step}")
        p.zcard("unacked_index")
        replies = p.execute()
        unacked = replies[-1]
        workers = float(self._listen_workers()) if self.heartbeat_listen_s > 0 else None
        n = 1 + len(PRIORITY_STEPS)
        notes = (NOT_VISIBLE, f"broker-wide unacknowledged tasks: {unacked}")
        return [QueueSnapshot(queue=q, recorded_at=now, source=self.name,
                              backlog=float(sum(replies[n * i: n * i + n])), workers=workers,
                              notes=notes)
                for i, q in enumerate(self.queues)]
