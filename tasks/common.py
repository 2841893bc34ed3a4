"""Project defaults for Prefect tasks.

``capplan_task`` is for pure computation (no retries: arithmetic does not get better by
repeating it); ``capplan_io_task`` is for I/O stages (collect, store, execute) and retries
transient faults with backoff and jitter.
"""

from __future__ import annotations

from functools import partial

from prefect import task
from prefect.cache_policies import NO_CACHE

capplan_task = partial(task, cache_policy=NO_CACHE, persist_result=False)
capplan_io_task = partial(
    task,
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=3,
    retry_delay_seconds=[1, 5, 15],
    retry_jitter_factor=0.5,
)
