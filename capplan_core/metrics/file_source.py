"""File metrics source: CSV (optionally gzipped) or Parquet in the design's metrics format."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from capplan_core.metrics.schema import (
    CLOCK_SKEW_S,
    NUMERIC_COLUMNS,
    REQUIRED_COLUMNS,
    MetricsFileError,
)
from capplan_core.utc import utc_timestamp


def read_metrics_file(path: str | Path) -> pd.DataFrame:
    """Read a metrics file into a frame with a UTC ``timestamp`` column.

    Values are not judged here (negative or non-finite values, future timestamps, duplicates,
    gaps are the data-quality stage's job, per queue, so one queue's bad rows never fail the
    others); only the schema and the parseability of each column are.

    Raises:
        MetricsFileError: missing file, unknown format, missing column, or unparseable values.
    """
    p = Path(path)
    if not p.exists():
        raise MetricsFileError(f"metrics file {str(p)!r} does not exist")
    suffixes = "".join(p.suffixes[-2:]).lower()
    try:
        if p.suffix.lower() == ".parquet":
            frame = pd.read_parquet(p)
        elif suffixes.endswith((".csv", ".csv.gz")):
            frame = pd.read_csv(p)
        else:
            raise MetricsFileError(
                f"metrics file {str(p)!r}: unknown format {p.suffix!r} "
                "(use .csv, .csv.gz, .parquet)"
            )
    except MetricsFileError:
        raise
    except Exception as err:  # noqa: BLE001 - pandas raises many kinds
        raise MetricsFileError(f"metrics file {str(p)!r} cannot be read: {err}") from None
    return validate_metrics_frame(frame, source=str(p))


def validate_metrics_frame(frame: pd.DataFrame, *, source: str = "<frame>") -> pd.DataFrame:
    """Check the schema of a metrics frame and coerce its types."""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise MetricsFileError(
            f"metrics file {source!r}: missing required column(s) {missing}; "
            f"required: {list(REQUIRED_COLUMNS)}"
        )
    out = frame.copy()
    ts = pd.to_datetime(out["timestamp"], utc=True, errors="coerce")
    bad_ts = out.loc[ts.isna() & out["timestamp"].notna(), "timestamp"]
    if len(bad_ts):
        raise MetricsFileError(
            f"metrics file {source!r}: column 'timestamp' has unparseable value "
            f"{bad_ts.iloc[0]!r} (row {bad_ts.index[0]})"
        )
    out["timestamp"] = ts
    out["queue"] = out["queue"].astype("string")
    for col in NUMERIC_COLUMNS:
        if col not in out.columns:
            continue
        num = _to_float(out[col])
        bad = out.loc[num.isna() & out[col].notna(), col]
        if len(bad):
            raise MetricsFileError(
                f"metrics file {source!r}: column {col!r} has non-numeric value "
                f"{bad.iloc[0]!r} (row {bad.index[0]})"
            )
        out[col] = num.astype(float)
    return out


def _float_or_nan(value: object) -> float:
    try:
        return float(str(value).strip())
    except ValueError:
        return float("nan")


def _to_float(column: pd.Series) -> pd.Series:
    """Numbers as floats; a number too large for a float ("1e400") becomes ``inf``, which the
    data-quality stage refuses for its queue alone, instead of failing the whole file."""
    num = pd.to_numeric(column, errors="coerce").astype(float)
    retry = num.isna() & column.notna()
    if retry.any():
        num.loc[retry] = column.loc[retry].map(_float_or_nan)
    return num


_CACHE: dict[tuple[str, float], pd.DataFrame] = {}


def read_metrics_file_cached(path: str | Path) -> pd.DataFrame:
    """``read_metrics_file`` memoised on (path, mtime): per-queue child runs share one parse."""
    p = Path(path).resolve()
    key = (str(p), p.stat().st_mtime if p.exists() else -1.0)
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = read_metrics_file(p)
    return _CACHE[key]


def data_end(
    path: str | Path, *, wall_clock: datetime | None = None, skew_s: float = CLOCK_SKEW_S
) -> pd.Timestamp:
    """For a file source, "now" is the end of its data: the newest timestamp in the file that
    is not in the future of ``wall_clock`` (default: now) by more than ``skew_s`` seconds.

    A far-future row belongs to its queue's data-quality report; it must not become every
    queue's clock (which would make all the others stale). When the whole file lies beyond
    the wall clock (a synthetic or shifted file), there is no outlier to single out and the
    newest timestamp is used.

    Raises:
        MetricsFileError: the file has no timestamps.
    """
    frame = read_metrics_file_cached(path)
    ts = frame["timestamp"].dropna()
    if ts.empty:
        raise MetricsFileError(f"metrics file {str(path)!r} has no timestamps")
    limit = utc_timestamp(wall_clock or datetime.now(UTC)) + pd.Timedelta(seconds=skew_s)
    present = ts[ts <= limit]
    return present.max() if len(present) else ts.max()


def read_queue_rows(path: str | Path, queue: str) -> pd.DataFrame:
    """The raw rows of one queue (possibly empty: the quality stage says so)."""
    frame = read_metrics_file_cached(path)
    return frame.loc[frame["queue"] == queue].reset_index(drop=True)
