"""File metrics source: CSV (optionally gzipped) or Parquet in the design's metrics format."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from capplan_core.metrics.schema import (
    NUMERIC_COLUMNS,
    REQUIRED_COLUMNS,
    MetricsFileError,
)


def read_metrics_file(path: str | Path) -> pd.DataFrame:
    """Read a metrics file into a frame with a UTC ``timestamp`` column.

    Values are not judged here (negative rates, duplicates, gaps are the data-quality stage's
    job); only the schema and the parseability of each column are.

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
        num = pd.to_numeric(out[col], errors="coerce")
        bad = out.loc[num.isna() & out[col].notna(), col]
        if len(bad):
            raise MetricsFileError(
                f"metrics file {source!r}: column {col!r} has non-numeric value "
                f"{bad.iloc[0]!r} (row {bad.index[0]})"
            )
        out[col] = num.astype(float)
    return out


_CACHE: dict[tuple[str, float], pd.DataFrame] = {}


def read_metrics_file_cached(path: str | Path) -> pd.DataFrame:
    """``read_metrics_file`` memoised on (path, mtime): per-queue child runs share one parse."""
    p = Path(path).resolve()
    key = (str(p), p.stat().st_mtime if p.exists() else -1.0)
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = read_metrics_file(p)
    return _CACHE[key]


def data_end(path: str | Path) -> pd.Timestamp:
    """For a file source, "now" is the end of its data: the newest timestamp in the file."""
    frame = read_metrics_file_cached(path)
    if frame["timestamp"].notna().sum() == 0:
        raise MetricsFileError(f"metrics file {str(path)!r} has no timestamps")
    return frame["timestamp"].max()


def read_queue_rows(path: str | Path, queue: str) -> pd.DataFrame:
    """The raw rows of one queue (possibly empty: the quality stage says so)."""
    frame = read_metrics_file_cached(path)
    return frame.loc[frame["queue"] == queue].reset_index(drop=True)
