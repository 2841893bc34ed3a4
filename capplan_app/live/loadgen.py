"""A load generator that enqueues real RQ jobs at a rate that can step.

Used by the live tests and by ``capplan demo --live``: start it, let it run in its
background thread, stop it. Arrivals are a piecewise-constant-rate Poisson process (or evenly
spaced): at each step boundary the next gap is redrawn with the new rate, which is exact for a
Poisson process because it is memoryless.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

try:
    from rq import Queue
except ModuleNotFoundError as err:  # rq is the 'live' extra, not a runtime dependency
    raise ModuleNotFoundError(
        "the live demo needs RQ: install capplan with the 'live' extra "
        "(pip install 'capplan[live]'; bin/setup installs it)",
        name=err.name,
    ) from err


@dataclass(frozen=True)
class RateStep:
    """From ``at_s`` seconds after :meth:`LoadGenerator.start`, enqueue ``rate_per_s`` jobs/s."""

    at_s: float
    rate_per_s: float


class LoadGenerator:
    """Enqueue ``func(job_s)`` on ``queue`` following ``steps``, in a background thread.

    Args:
        queue: the RQ queue (its connection is used from the generator's thread).
        steps: rate schedule; the first step must start at 0 s, ``at_s`` strictly increasing,
            rates >= 0.
        job_s: the argument given to every job (its service time for ``live_jobs.work``).
        func: dotted path of the job function, importable by the workers.
        spacing: ``poisson`` (exponential gaps) or ``even`` (gaps of exactly 1/rate).
        rng: the random stream for Poisson gaps.
        job_id_prefix: job ids are ``{prefix}-{n}`` (default: the queue name), so a test can
            find and delete every key it created.
        result_ttl_s: how long RQ keeps a finished job (its enqueued/started times: the
            measured waits).
    """

    def __init__(
        self,
        queue: Queue,
        steps: Sequence[RateStep],
        *,
        job_s: float = 0.5,
        func: str = "live_jobs.work",
        spacing: Literal["poisson", "even"] = "poisson",
        rng: np.random.Generator | None = None,
        job_id_prefix: str | None = None,
        result_ttl_s: int = 60,
    ) -> None:
        if not steps or steps[0].at_s != 0:
            raise ValueError("steps must start with a step at at_s=0")
        if any(b.at_s <= a.at_s for a, b in zip(steps, steps[1:], strict=False)):
            raise ValueError("steps: at_s must be strictly increasing")
        if any(s.rate_per_s < 0 for s in steps):
            raise ValueError("steps: rate_per_s must be >= 0")
        if spacing not in ("poisson", "even"):
            raise ValueError(f"spacing must be 'poisson' or 'even' (got {spacing!r})")
        self.queue = queue
        self.steps = tuple(steps)
        self.job_s = job_s
        self.func = func
        self.spacing = spacing
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.job_id_prefix = job_id_prefix or queue.name
        self.result_ttl_s = result_ttl_s
        #: wall-clock time (``time.time()``) of every enqueue, in order
        self.enqueued_at: list[float] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started_at: float | None = None
        #: ``time.time()`` at :meth:`start` (to set against :attr:`enqueued_at`)
        self.started_wall_at: float = 0.0

    @property
    def enqueued(self) -> int:
        return len(self.enqueued_at)

    def rate_at(self, elapsed_s: float) -> float:
        """The scheduled rate (jobs/s) ``elapsed_s`` seconds after the start."""
        rate = self.steps[0].rate_per_s
        for step in self.steps:
            if step.at_s <= elapsed_s:
                rate = step.rate_per_s
        return rate

    def _next_boundary(self, elapsed_s: float) -> float:
        later = [s.at_s for s in self.steps if s.at_s > elapsed_s]
        return later[0] if later else float("inf")

    def _gap_s(self, rate: float) -> float:
        if rate <= 0:
            return float("inf")
        return 1.0 / rate if self.spacing == "even" else float(self.rng.exponential(1.0 / rate))

    def start(self) -> LoadGenerator:
        if self._thread is not None:
            raise RuntimeError("the load generator was already started")
        self.started_at = time.monotonic()
        self.started_wall_at = time.time()
        self._thread = threading.Thread(target=self._run, name="capplan-loadgen", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop enqueueing and wait for the thread; re-raises an enqueue error, if any."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self.errors:
            raise RuntimeError(f"load generator failed: {self.errors[0]!r}") from self.errors[0]

    def __enter__(self) -> LoadGenerator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        elapsed = 0.0
        try:
            while not self._stop.is_set():
                nxt = elapsed + self._gap_s(self.rate_at(elapsed))
                boundary = self._next_boundary(elapsed)
                if nxt >= boundary:  # redraw with the next step's rate from its start
                    elapsed = boundary
                    if self._stop.wait(max(0.0, boundary - self._now())):
                        return
                    continue
                if nxt == float("inf"):  # rate 0 with no later step: idle until stopped
                    self._stop.wait()
                    return
                if self._stop.wait(max(0.0, nxt - self._now())):
                    return
                elapsed = nxt
                self.queue.enqueue(
                    self.func,
                    self.job_s,
                    job_id=f"{self.job_id_prefix}-{self.enqueued}",
                    result_ttl=self.result_ttl_s,
                    failure_ttl=300,
                )
                self.enqueued_at.append(time.time())
        except BaseException as err:  # surfaced by stop()
            self.errors.append(err)

    def _now(self) -> float:
        return time.monotonic() - (self.started_at or 0.0)
