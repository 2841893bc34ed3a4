"""The metrics file format (docs/architecture.md, "Metrics file"): a row per queue per interval."""

from __future__ import annotations

REQUIRED_COLUMNS: tuple[str, ...] = (
    "timestamp",
    "queue",
    "arrival_rate",
    "service_rate",
    "backlog",
    "workers",
)
OPTIONAL_COLUMNS: tuple[str, ...] = ("service_time_p95", "service_time_scv")
NUMERIC_COLUMNS: tuple[str, ...] = (
    "arrival_rate",
    "service_rate",
    "backlog",
    "workers",
    "service_time_p95",
    "service_time_scv",
)


class MetricsFileError(ValueError):
    """A metrics file cannot be used; the message names the file, the column and the value."""
