"""The pool's state now (workers, backlog, service time), read from the latest metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from capplan_core.quality.clean import CleanResult, latest_state


@dataclass(frozen=True)
class QueueState:
    """What the pool looks like right now.

    ``current_workers`` is where the plan starts: the count the scaler reads when planning
    live, else the measured one. ``measured_workers`` is what the newest metrics say (None when
    not known apart from ``current_workers``); ``replica_source`` says where
    ``current_workers`` came from.
    """

    current_workers: int
    current_backlog: float
    mean_service_s: float
    service_scv: float = 1.0
    measured_workers: int | None = None
    replica_source: str = "metrics"

    @property
    def workers_differ(self) -> bool:
        """The scaler's count is not what the metrics measured (a difference to show)."""
        return self.measured_workers is not None and self.measured_workers != self.current_workers

    def details(self) -> dict[str, Any]:
        """The state as stored on a plan's details (JSON)."""
        return {
            "current_backlog": self.current_backlog,
            "mean_service_s": self.mean_service_s,
            "service_scv": self.service_scv,
            "current_workers": self.current_workers,
            "measured_workers": self.measured_workers,
            "replica_source": self.replica_source,
            "workers_differ": self.workers_differ,
        }


def pool_state(
    clean: CleanResult,
    lookback_intervals: int = 8,
    *,
    live_workers: int | None = None,
    replica_source: str | None = None,
) -> QueueState:
    """The pool's state from the newest cleaned intervals (medians for service statistics).

    ``live_workers``, when given, is the count the scaler reads: the plan starts from it, and
    the measured count is kept beside it (``replica_source`` names the scaler).

    Raises:
        ValueError: the queue has no usable metrics.
    """
    st = latest_state(clean, lookback_intervals)
    measured = int(round(st["current_workers"]))
    live = live_workers is not None
    return QueueState(
        current_workers=live_workers if live_workers is not None else measured,
        current_backlog=float(st["current_backlog"]),
        mean_service_s=float(st["mean_service_s"]),
        service_scv=float(st["service_scv"]),
        measured_workers=measured if live else None,
        replica_source=(replica_source or "scaler") if live else "metrics",
    )
