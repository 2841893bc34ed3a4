"""Jobs run by the ``rq worker`` processes supervisord starts in the live tests.

The workers import this module by name (``live_jobs.work``): the supervisord program sets
``directory=`` and ``PYTHONPATH`` to this folder.
"""

from __future__ import annotations

import time


def work(seconds: float) -> float:
    """Occupy the worker for ``seconds`` (a job with a known service time)."""
    time.sleep(seconds)
    return seconds
