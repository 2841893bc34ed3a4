"""The pool's state now (workers, backlog, service time), read from the latest metrics."""

from __future__ import annotations

from dataclasses import dataclass

from capplan_core.quality.clean import CleanResult, latest_state


@dataclass(frozen=True)
class QueueState:
    """What the latest metrics say about the pool right now."""

    current_workers: int
    current_backlog: float
    mean_service_s: float
    service_scv: float = 1.0


def pool_state(clean: CleanResult, lookback_intervals: int = 8) -> QueueState:
    """The pool's state from the newest cleaned intervals (medians for service statistics).

    Raises:
        ValueError: the queue has no usable metrics.
    """
    st = latest_state(clean, lookback_intervals)
    return QueueState(current_workers=int(round(st["current_workers"])),
                      current_backlog=float(st["current_backlog"]),
                      mean_service_s=float(st["mean_service_s"]),
                      service_scv=float(st["service_scv"]))
