"""Celery with a Redis broker: what the broker shows, and plainly what it does not.

Visible in Redis (kombu's Redis transport layout, checked against a live Celery 5.7 worker):

* **backlog** -- ``LLEN <queue>`` plus kombu's priority sub-lists ``<queue><sep><n>`` for
  ``n`` in 1..9 (this covers kombu's default steps 3/6/9 as well as Celery's documented
  ``priority_steps=list(range(10))``; priority 0 is the bare list);
* **tasks taken but not acknowledged** -- ``ZCARD unacked_index``, for the whole broker (not
  per queue): prefetched tasks, plus running tasks with ``acks_late``;
* **workers** -- only through Celery events: every worker publishes ``worker-heartbeat``
  every 2 s (by default, ``-E`` is *not* needed; ``--without-heartbeat`` turns it off) on the
  fanout channel ``/<db>.celeryev/worker.heartbeat``. With ``heartbeat_listen_s > 0`` the
  source listens that long (>= 2.5 s to see every worker) and counts distinct hostnames of
  the broker *database* (pub/sub is server-wide; other databases' workers are not counted).
  A heartbeat does not say which queues a worker consumes: ``worker_hostname`` (a glob such
  as ``email@*``) restricts the count to a naming convention. A worker counts as one node
  whatever its ``--concurrency``.

Not visible: **prefetched tasks are not in the list** (each worker process holds up to
``worker_prefetch_multiplier`` tasks), arrivals, completions and task run times. Celery keeps
no counters in Redis. Use Prometheus for those (e.g. celery-exporter's
``celery_task_received_total`` / ``celery_task_succeeded_total`` / ``celery_task_runtime``
histogram) through ``SourceSpec.promql``; this source then supplies backlog only.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from redis import Redis

from capplan_core.metrics.snapshot import QueueSnapshot, ensure_utc

PRIORITY_SEP = "\x06\x16"
# kombu's default steps are 0/3/6/9; Celery's docs recommend list(range(10)). Priority 0 is the
# bare list; reading 1..9 covers both (an absent list has LLEN 0).
PRIORITY_STEPS = tuple(range(1, 10))
NOT_VISIBLE = (
    "celery: prefetched tasks are not in the list; arrivals, completions and run "
    "times are not in Redis (use Prometheus)"
)
WORKERS_NOTE = (
    "celery: workers are worker nodes (hostnames) seen in heartbeats, each running "
    "--concurrency processes; heartbeats do not say which queues a node consumes"
)
_ALIVE = {"worker-heartbeat", "worker-online"}


def worker_event(message: bytes | str) -> tuple[str, str] | None:
    """``(event type, hostname)`` of a kombu-wrapped ``worker-*`` event, or None."""
    try:
        env = json.loads(message)
        body = env["body"]
        if env.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        event = json.loads(body)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if not isinstance(event, dict):
        return None
    kind, host = event.get("type"), event.get("hostname")
    if not isinstance(kind, str) or not kind.startswith("worker-") or not host:
        return None
    return kind, str(host)


def heartbeat_hostname(message: bytes | str) -> str | None:
    """The hostname in a kombu-wrapped ``worker-heartbeat`` event, or None for anything else."""
    ev = worker_event(message)
    return ev[1] if ev and ev[0] == "worker-heartbeat" else None


def _glob_escape(s: str) -> str:
    """``s`` as a literal inside a Redis PSUBSCRIBE pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in s)


class CelerySource:
    """Backlog (and optionally workers) of Celery queues on a Redis broker.

    Args:
        redis: connection to the broker database.
        queues: Celery queue names (default Celery queue: ``celery``).
        heartbeat_listen_s: seconds to listen for worker heartbeats per poll (0: do not;
            heartbeats come every 2 s, so listen >= 2.5 s).
        worker_hostname: count only workers whose hostname matches this glob (e.g. ``email@*``).
        priority_steps / sep / global_keyprefix / fanout_prefix: kombu's broker transport
            options of the same names, when the Celery app changes them (``fanout_prefix``
            default ``/<db>.``).
    """

    name = "celery"

    def __init__(
        self,
        redis: Redis,
        queues: Sequence[str],
        *,
        heartbeat_listen_s: float = 0.0,
        worker_hostname: str | None = None,
        priority_steps: Sequence[int] = PRIORITY_STEPS,
        sep: str = PRIORITY_SEP,
        global_keyprefix: str = "",
        fanout_prefix: str | None = None,
    ) -> None:
        self.redis = redis
        self.queues = list(queues)
        self.heartbeat_listen_s = heartbeat_listen_s
        self.worker_hostname = worker_hostname
        self.priority_steps = [s for s in dict.fromkeys(priority_steps) if s]
        self.sep = sep
        self.global_keyprefix = global_keyprefix
        if fanout_prefix is None:
            db = redis.connection_pool.connection_kwargs.get("db", 0)
            fanout_prefix = f"/{db}."
        # /<db>.celeryev/worker.heartbeat (fanout_patterns) or /<db>.celeryev (without)
        self.event_pattern = _glob_escape(f"{global_keyprefix}{fanout_prefix}celeryev") + "*"

    def _listen_workers(self) -> int:
        ps = self.redis.pubsub(ignore_subscribe_messages=True)
        ps.psubscribe(self.event_pattern)
        hosts: set[str] = set()
        try:
            deadline = time.monotonic() + self.heartbeat_listen_s
            while (left := deadline - time.monotonic()) > 0:
                msg: Any = ps.get_message(timeout=left)
                ev = worker_event(msg["data"]) if msg else None
                if ev is None or (
                    self.worker_hostname is not None
                    and not fnmatch.fnmatchcase(ev[1], self.worker_hostname)
                ):
                    continue
                if ev[0] in _ALIVE:
                    hosts.add(ev[1])
                elif ev[0] == "worker-offline":
                    hosts.discard(ev[1])
        finally:
            ps.close()
        return len(hosts)

    def poll(self, now: datetime) -> list[QueueSnapshot]:
        """One snapshot per queue (one pipelined round trip, plus listening if enabled)."""
        now = ensure_utc(now)
        k = self.global_keyprefix
        p = self.redis.pipeline(transaction=False)
        for q in self.queues:
            p.llen(f"{k}{q}")
            for step in self.priority_steps:
                p.llen(f"{k}{q}{self.sep}{step}")
        p.zcard(f"{k}unacked_index")
        replies = p.execute()
        unacked = replies[-1]
        workers = float(self._listen_workers()) if self.heartbeat_listen_s > 0 else None
        n = 1 + len(self.priority_steps)
        notes: tuple[str, ...] = (NOT_VISIBLE, f"broker-wide unacknowledged tasks: {unacked}")
        if workers is not None:
            notes += (WORKERS_NOTE,)
        return [
            QueueSnapshot(
                queue=q,
                recorded_at=now,
                source=self.name,
                backlog=float(sum(replies[n * i : n * i + n])),
                workers=workers,
                notes=notes,
            )
            for i, q in enumerate(self.queues)
        ]
