"""The waiting jobs of a shared pool, one FIFO per class, taken in a discipline's order.

Used by the SimPy reference engine in place of its single FIFO (same ``append``/``appendleft``/
``popleft`` interface); the fast engine applies the same rules in ``fast_classes``. The
disciplines are described in ``classes``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

import numpy as np


class ClassQueues:
    """Per-class FIFOs; ``popleft`` takes the head of the class the discipline picks."""

    def __init__(
        self,
        job_class: np.ndarray,
        n_classes: int,
        discipline: str,
        weights: np.ndarray,
        pick_u: np.ndarray | None,
    ) -> None:
        self.job_class = job_class
        self.queues: list[deque[int]] = [deque() for _ in range(n_classes)]
        self.discipline = discipline
        self.weights = weights
        self.pick_u = pick_u
        self.last = n_classes - 1  # round robin starts at the first class
        self.picks = 0
        self.size = 0

    def append(self, job: int) -> None:
        self.queues[self.job_class[job]].append(job)
        self.size += 1

    def appendleft(self, job: int) -> None:
        """A job given back (its worker failed) goes to the head of its class."""
        self.queues[self.job_class[job]].appendleft(job)
        self.size += 1

    def popleft(self) -> int:
        k = self._pick()
        self.size -= 1
        return self.queues[k].popleft()

    def _pick(self) -> int:
        n = len(self.queues)
        if self.discipline == "strict":
            return next(k for k in range(n) if self.queues[k])
        if self.discipline == "round_robin":
            k = next(j for j in ((self.last + i) % n for i in range(1, n + 1)) if self.queues[j])
            self.last = k
            return k
        if self.pick_u is None:
            raise ValueError("the weighted discipline needs ReplicationInputs.pick_u")
        u = self.pick_u[self.picks % self.pick_u.size]
        self.picks += 1
        total = sum(self.weights[k] for k in range(n) if self.queues[k])
        acc, last = 0.0, -1
        for k in range(n):
            if self.queues[k]:
                acc += self.weights[k]
                last = k
                if u * total < acc:
                    return k
        return last

    def __len__(self) -> int:
        return self.size

    def __bool__(self) -> bool:
        return self.size > 0

    def __iter__(self) -> Iterator[int]:
        for q in self.queues:
            yield from q
