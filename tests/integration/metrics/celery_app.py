"""A tiny Celery app for the live CelerySource test.

The worker (``celery -A celery_app worker``) builds it from the environment:
``CAPPLAN_CELERY_BROKER`` (broker URL), ``CAPPLAN_CELERY_QUEUE`` (the queue it consumes).
``sleep_task(tag, seconds)`` counts ``<tag>:started`` / ``<tag>:completed`` in the broker db
(the test's ground truth) around a ``time.sleep``. Priorities use Celery's documented
``priority_steps=list(range(10))``.
"""

from __future__ import annotations

import os
import time

import redis
from celery import Celery

TASK = "capplan_test.sleep"


def make_app(broker: str, queue: str) -> Celery:
    app = Celery("capplan_celery_test", broker=broker, set_as_current=False)
    app.conf.update(
        task_default_queue=queue,
        task_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "priority_steps": list(range(10)),
            "queue_order_strategy": "priority",
        },
    )
    r = redis.Redis.from_url(broker)

    @app.task(name=TASK, ignore_result=True)
    def sleep_task(tag: str, seconds: float) -> None:
        r.incr(f"{tag}:started")
        time.sleep(seconds)
        r.incr(f"{tag}:completed")

    return app


app = make_app(
    os.environ.get("CAPPLAN_CELERY_BROKER", "redis://127.0.0.1:6379/7"),
    os.environ.get("CAPPLAN_CELERY_QUEUE", "celery"),
)
