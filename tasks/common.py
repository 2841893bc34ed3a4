"""Project defaults for Prefect tasks.

``capplan_task`` is for pure computation (no retries: arithmetic does not get better by
repeating it); ``capplan_io_task`` is for I/O stages (collect, store, execute) and retries
transient faults with backoff and jitter. Both work as ``capplan_task(fn, name=...)`` and as
the decorator ``@capplan_task(name=...)``; options given override the defaults.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, overload

from prefect import Task, task
from prefect.cache_policies import NO_CACHE

P = ParamSpec("P")
R = TypeVar("R")

_PURE: dict[str, Any] = {"cache_policy": NO_CACHE, "persist_result": False}
_IO: dict[str, Any] = {
    **_PURE,
    "retries": 3,
    "retry_delay_seconds": [1, 5, 15],
    "retry_jitter_factor": 0.5,
}


def _with(defaults: dict[str, Any], fn: Callable[P, R] | None, options: dict[str, Any]) -> Any:
    make = task(**{**defaults, **options})
    return make if fn is None else make(fn)


@overload
def capplan_task(fn: Callable[P, R], /, **options: Any) -> Task[P, R]: ...
@overload
def capplan_task(fn: None = None, /, **options: Any) -> Callable[[Callable[P, R]], Task[P, R]]: ...
def capplan_task(fn: Callable[P, R] | None = None, /, **options: Any) -> Any:
    """A Prefect task for pure computation: no cache, no persisted result, no retries."""
    return _with(_PURE, fn, options)


@overload
def capplan_io_task(fn: Callable[P, R], /, **options: Any) -> Task[P, R]: ...
@overload
def capplan_io_task(
    fn: None = None, /, **options: Any
) -> Callable[[Callable[P, R]], Task[P, R]]: ...
def capplan_io_task(fn: Callable[P, R] | None = None, /, **options: Any) -> Any:
    """A Prefect task for I/O: like :func:`capplan_task`, retried 3 times with backoff."""
    return _with(_IO, fn, options)
