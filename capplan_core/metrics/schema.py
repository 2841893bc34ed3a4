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

# Values must be finite: `inf` (or a number too large for a float, e.g. 1e400) is kept by the
# reader and refused per queue by the data-quality stage, like any other impossible value.
MAX_FINITE = 1.7976931348623157e308  # sys.float_info.max
# A row newer than the run's clock (as_of or the wall clock, whichever is later) by more than
# this is from the future: a data-quality failure of its own queue, never the file's "now".
CLOCK_SKEW_S = 300.0


class MetricsFileError(ValueError):
    """A metrics file cannot be used; the message names the file, the column and the value."""
