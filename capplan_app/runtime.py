"""Process-level set-up for the processes that plan queues.

A queue's forecast fits a handful of parameters with L-BFGS and its quality checks run on
2,016 rows: numbers far too small for a multi-threaded BLAS. OpenBLAS still starts one thread
per core and spins them up for each tiny call, so with two planning processes on two cores
they contend: one standard plan took 237 ms with OpenBLAS's default threads and 163 ms with
one, at half the CPU (docs/scale.md). ``limit_blas_threads`` caps them (threadpoolctl) once
per process — for the whole process, not a scope, so concurrent task threads cannot restore
each other's limit.
"""

from __future__ import annotations

import threading

from threadpoolctl import threadpool_limits

from capplan_app.settings import get_settings

_lock = threading.Lock()
_applied: int | None = None


def limit_blas_threads(threads: int | None = None) -> int:
    """Cap the BLAS/OpenMP thread pools of this process at ``threads`` (default
    ``CAPPLAN_BLAS_THREADS``, 1); the cap applied. Idempotent and thread-safe."""
    global _applied
    want = threads if threads is not None else get_settings().blas_threads
    with _lock:
        if _applied != want:
            threadpool_limits(limits=want)
            _applied = want
    return want
