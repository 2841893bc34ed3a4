"""CelerySource against kombu's Redis key layout (no Celery worker is installed here)."""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import UTC, datetime

import pytest

from capplan_adapters.metrics.celery_source import PRIORITY_SEP, CelerySource, heartbeat_hostname

pytestmark = pytest.mark.integration


def heartbeat_envelope(hostname: str) -> str:
    """A kombu message as a Celery worker publishes ``worker-heartbeat`` (body base64)."""
    event = {"hostname": hostname, "type": "worker-heartbeat", "active": 1, "processed": 10}
    return json.dumps(
        {
            "body": base64.b64encode(json.dumps(event).encode()).decode(),
            "content-type": "application/json",
            "properties": {"body_encoding": "base64", "delivery_tag": "x"},
        }
    )


def test_celery_backlog_counts_priority_sublists(redis, tid) -> None:
    q = f"celery-{tid}"
    redis.lpush(q, "t1", "t2")
    redis.lpush(f"{q}{PRIORITY_SEP}6", "t3")
    snap = CelerySource(redis, [q]).poll(datetime.now(UTC))[0]
    assert snap.backlog == 3 and snap.workers is None
    assert "prefetched tasks are not in the list" in snap.notes[0]


def test_celery_workers_from_heartbeat_events(redis, tid) -> None:
    q = f"celery-{tid}"
    db = redis.connection_pool.connection_kwargs["db"]  # kombu prefixes channels with it
    channel = f"/{db}.celeryev/worker.heartbeat.{tid}"

    def publish() -> None:
        for _ in range(6):
            time.sleep(0.1)
            for host in ("w1@a", "w2@b"):
                redis.publish(channel, heartbeat_envelope(host))

    t = threading.Thread(target=publish)
    t.start()
    snap = CelerySource(redis, [q], heartbeat_listen_s=1.0).poll(datetime.now(UTC))[0]
    t.join()
    assert snap.workers == 2


def test_heartbeat_parser_ignores_other_events() -> None:
    assert heartbeat_hostname(heartbeat_envelope("w@h")) == "w@h"
    assert heartbeat_hostname("not json") is None
    assert heartbeat_hostname(json.dumps({"body": json.dumps({"type": "task-sent"})})) is None
