from __future__ import annotations

import pandas as pd
import pytest

from capplan_core.metrics.file_source import read_metrics_file
from capplan_core.metrics.schema import MetricsFileError


def _frame(n=4):
    return pd.DataFrame(
        {
            "timestamp": pd.date_range("2026-11-01", periods=n, freq="1min", tz="UTC").strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "queue": "q",
            "arrival_rate": 1.0,
            "service_rate": 0.5,
            "backlog": 0,
            "workers": 3,
        }
    )


def test_missing_column_is_named(tmp_path):
    f = tmp_path / "m.csv"
    _frame().drop(columns=["backlog"]).to_csv(f, index=False)
    with pytest.raises(MetricsFileError, match=r"missing required column\(s\) \['backlog'\]"):
        read_metrics_file(f)


def test_non_numeric_value_is_named_with_row(tmp_path):
    df = _frame()
    df["arrival_rate"] = df["arrival_rate"].astype(object)
    df.loc[2, "arrival_rate"] = "lots"
    f = tmp_path / "m.csv"
    df.to_csv(f, index=False)
    with pytest.raises(
        MetricsFileError, match=r"'arrival_rate' has non-numeric value 'lots' \(row 2\)"
    ):
        read_metrics_file(f)


def test_bad_timestamp_and_unknown_format(tmp_path):
    df = _frame()
    df.loc[1, "timestamp"] = "yesterday"
    f = tmp_path / "m.csv"
    df.to_csv(f, index=False)
    with pytest.raises(MetricsFileError, match="'timestamp' has unparseable value 'yesterday'"):
        read_metrics_file(f)
    g = tmp_path / "m.json"
    g.write_text("{}")
    with pytest.raises(MetricsFileError, match="unknown format '.json'"):
        read_metrics_file(g)


def test_parquet_and_csv_read_the_same(tmp_path):
    df = _frame()
    df.to_csv(tmp_path / "m.csv", index=False)
    df.to_parquet(tmp_path / "m.parquet", index=False)
    a, b = read_metrics_file(tmp_path / "m.csv"), read_metrics_file(tmp_path / "m.parquet")
    pd.testing.assert_frame_equal(a, b)
    assert str(a["timestamp"].dt.tz) == "UTC"
