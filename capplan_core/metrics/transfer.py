"""Move metrics between a metrics file and the store's ``queue_metrics`` table.

Import reads a file in the documented format (docs/architecture.md, "Metrics file"), checks
every cell before anything is written, and hands the rows to the store's ``record_metrics``
(idempotent on (queue, timestamp): a second import of the same file writes nothing). Export
writes one queue's stored span back in the same format (CSV, ``.csv.gz`` or Parquet, chosen by
the extension); re-reading it gives exactly the values that were imported.

Cell rules on import: ``timestamp`` and ``queue`` must be present; a numeric cell may be empty
(a missing value, stored as NULL, judged later by the data-quality stage), but text that is not
a number, or a non-finite number (``inf``, ``-inf``, ``nan``), is an error naming the row and
the column.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from capplan_core.metrics.file_source import validate_metrics_frame
from capplan_core.metrics.history import HistoryReader
from capplan_core.metrics.schema import (
    NUMERIC_COLUMNS,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    MetricsFileError,
)

#: columns of ``queue_metrics`` that hold the file's numbers; the optional ones go to ``extra``
STORE_COLUMNS: tuple[str, ...] = ("arrival_rate", "service_rate", "backlog", "workers")


class MetricsImportError(MetricsFileError):
    """A cell of an import file cannot be stored. ``row`` is 1-based over the data rows."""

    def __init__(self, message: str, *, row: int | None = None, column: str | None = None):
        super().__init__(message)
        self.row = row
        self.column = column


class MetricsWriter(Protocol):
    def record_metrics(self, rows: Iterable[dict[str, Any]]) -> int: ...


@dataclass(frozen=True)
class ImportResult:
    """What an import did: ``written`` new rows, ``skipped`` already stored (or repeated)."""

    rows: int
    written: int
    skipped: int
    queues: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"written": self.written, "skipped": self.skipped, "queues": list(self.queues)}


def _file_kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    raise MetricsFileError(
        f"metrics file {str(path)!r}: unknown format (use .csv, .csv.gz, .parquet)"
    )


def _read_raw(path: Path) -> pd.DataFrame:
    """The file's cells as read, CSV cells as text (so ``nan`` and an empty cell differ)."""
    if not path.exists():
        raise MetricsFileError(f"metrics file {str(path)!r} does not exist")
    kind = _file_kind(path)
    try:
        if kind == "parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as err:  # noqa: BLE001 - pandas and pyarrow raise many kinds
        raise MetricsFileError(f"metrics file {str(path)!r} cannot be read: {err}") from None


def _is_blank(value: Any) -> bool:
    if value is None or value is pd.NaT:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    return isinstance(value, float) and math.isnan(value)  # Parquet null reads as NaN


def parse_timestamps(values: pd.Series) -> pd.Series:
    """ISO-8601 texts (or datetimes) to UTC; a naive value is read as UTC, bad ones are NaT."""
    return pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")


def _cell_problem(column: str, value: Any) -> str | None:
    if _is_blank(value):
        return "a value is required" if column in ("timestamp", "queue") else None
    if column == "timestamp":
        parsed = parse_timestamps(pd.Series([value]))
        return "not an ISO-8601 timestamp" if parsed.isna().iloc[0] else None
    if column == "queue":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "not a number"
    if not math.isfinite(number):
        return "not a finite number (leave the cell empty for a missing value)"
    return None


def check_cells(raw: pd.DataFrame, *, source: str) -> pd.Series:
    """Check every cell; returns the parsed UTC ``timestamp`` column.

    Raises:
        MetricsImportError: at the first bad cell in row order (then column order).
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise MetricsImportError(
            f"metrics file {source!r}: missing required column(s) "
            f"{missing}; required: {list(REQUIRED_COLUMNS)}"
        )
    columns = [*REQUIRED_COLUMNS[:2], *(c for c in NUMERIC_COLUMNS if c in raw.columns)]
    bad = pd.Series(False, index=raw.index)
    ts = parse_timestamps(raw["timestamp"].where(~raw["timestamp"].map(_is_blank)))
    bad |= ts.isna() | raw["queue"].map(_is_blank)
    for column in columns[2:]:
        blank = raw[column].map(_is_blank)
        num = pd.to_numeric(raw[column].where(~blank), errors="coerce").astype(float)
        bad |= ~blank & ~pd.Series(np.isfinite(num.to_numpy()), index=raw.index)
    if bad.any():
        pos = int(np.flatnonzero(bad.to_numpy())[0])
        for column in columns:
            value = raw[column].iloc[pos]
            why = _cell_problem(column, value)
            if why:
                raise MetricsImportError(
                    f"metrics file {source!r}: row {pos + 1}, column {column!r}: {why} "
                    f"(got {value!r}); nothing was written",
                    row=pos + 1,
                    column=column,
                )
    return ts


def read_import_file(path: str | Path) -> pd.DataFrame:
    """Read and check a metrics file for import; typed like ``read_metrics_file``'s frame.

    Raises:
        MetricsImportError: a bad cell (names the 1-based data row and the column).
        MetricsFileError: missing file, unknown format, unreadable file.
    """
    p = Path(path)
    raw = _read_raw(p)
    timestamps = check_cells(raw, source=str(p))
    if _file_kind(p) == "csv":  # empty cells are missing values
        raw = raw.mask(raw.map(_is_blank), None)
    raw["timestamp"] = timestamps
    return validate_metrics_frame(raw, source=str(p))


def frame_to_store_rows(frame: pd.DataFrame, *, source: str) -> list[dict[str, Any]]:
    """``queue_metrics`` row dicts (``extra`` carries the optional columns and ``source``)."""
    optional = [c for c in OPTIONAL_COLUMNS if c in frame.columns]
    rows: list[dict[str, Any]] = []
    for rec in frame.to_dict("records"):
        row: dict[str, Any] = {
            "queue_name": str(rec["queue"]),
            "recorded_at": rec["timestamp"].to_pydatetime(),
        }
        row.update({c: _number(rec[c]) for c in STORE_COLUMNS})
        extra: dict[str, Any] = {c: _number(rec[c]) for c in optional}
        extra["source"] = source
        row["extra"] = extra
        rows.append(row)
    return rows


def _number(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def import_metrics_file(store: MetricsWriter, path: str | Path) -> ImportResult:
    """Check ``path`` whole, then write its rows through ``store.record_metrics`` at once.

    Raises:
        MetricsImportError / MetricsFileError: before anything is written.
    """
    p = Path(path)
    frame = read_import_file(p)
    rows = frame_to_store_rows(frame, source=f"import:{p.name}")
    written = store.record_metrics(rows)
    queues = tuple(sorted({r["queue_name"] for r in rows}))
    return ImportResult(rows=len(rows), written=written, skipped=len(rows) - written, queues=queues)


def export_frame(
    store: HistoryReader,
    queue: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> pd.DataFrame:
    """One queue's stored rows in the file format; optional columns only when any is set."""
    frame = store.metrics_history(queue, since, until)
    keep = [
        *REQUIRED_COLUMNS,
        *(c for c in OPTIONAL_COLUMNS if c in frame.columns and frame[c].notna().any()),
    ]
    return frame[keep].reset_index(drop=True)


def write_metrics_frame(frame: pd.DataFrame, path: str | Path) -> int:
    """Write a metrics frame to ``path`` (format by extension); returns the row count.

    Timestamps are written as ISO-8601 UTC with ``Z``; numbers with Python's shortest
    round-trip repr, so a re-import reads back the same values.
    """
    p = Path(path)
    if _file_kind(p) == "parquet":
        frame.to_parquet(p, index=False)
    else:
        out = frame.copy()
        out["timestamp"] = [t.isoformat().replace("+00:00", "Z") for t in out["timestamp"]]
        out["queue"] = out["queue"].astype(str)
        out.to_csv(p, index=False, compression="infer")
    return len(frame)


def export_metrics_file(
    store: HistoryReader,
    queue: str,
    path: str | Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> int:
    """Write one queue's stored rows to ``path`` (see :func:`write_metrics_frame`)."""
    _file_kind(Path(path))
    return write_metrics_frame(export_frame(store, queue, since=since, until=until), path)


def shifted_to_end(frame: pd.DataFrame, end: datetime) -> pd.DataFrame:
    """``frame`` with every timestamp moved by the same whole number of minutes, so that its
    newest timestamp is ``end`` floored to the minute: a recorded history replayed as if it
    had been collected up to now (``capplan demo``, tests of the live loop). Nothing else
    changes: gaps, bad rows and each queue's lag behind the others stay as they were."""
    ts = pd.to_datetime(frame["timestamp"], utc=True)
    target = pd.Timestamp(end).tz_convert("UTC").floor("min")
    out = frame.copy()
    out["timestamp"] = ts + (target - ts.max()).floor("min")
    return out
