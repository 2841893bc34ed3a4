"""The pool's state now, as the latest metrics describe it (no engine imports)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QueueState:
    """What the latest metrics say about the pool right now."""

    current_workers: int
    current_backlog: float
    mean_service_s: float
    service_scv: float = 1.0
