"""Metrics import/export between files and the real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from capplan_adapters.store.db import open_store
from capplan_core.metrics.file_source import read_metrics_file
from capplan_core.metrics.transfer import (
    MetricsImportError,
    export_metrics_file,
    import_metrics_file,
)

pytestmark = pytest.mark.integration

DEMO = Path(__file__).resolve().parents[3] / "data" / "demo" / "metrics.csv.gz"
HEADER = "timestamp,queue,arrival_rate,service_rate,backlog,workers,service_time_p95\n"


@pytest.fixture(scope="module")
def demo_frame() -> pd.DataFrame:
    return read_metrics_file(DEMO)


#: the demo's queues, sorted (the shared pool serves the two notify- queues)
DEMO_QUEUES = ("emails", "legacy-sync", "notify-digest", "notify-push", "reports", "thumbnails")


@pytest.fixture(scope="module")
def two_days(demo_frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's first two days, all six queues (17,2xx rows): big enough, quick to write."""
    start = demo_frame["timestamp"].min()
    part = demo_frame[demo_frame["timestamp"] < start + pd.Timedelta(days=2)].copy()
    path = tmp_path_factory.mktemp("metrics") / "two_days.csv"
    part["timestamp"] = [t.isoformat().replace("+00:00", "Z") for t in part["timestamp"]]
    part.to_csv(path, index=False)
    return path


@pytest.fixture
def cli(store_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    from capplan_app.settings import get_settings
    from capplan_cli.main import app

    monkeypatch.setenv("CAPPLAN_DATABASE_URL", store_url)
    monkeypatch.setenv("CAPPLAN_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    runner = CliRunner()
    yield lambda *args: runner.invoke(app, list(args))
    get_settings.cache_clear()


def count_rows(store_url: str) -> int:
    from sqlalchemy import func, select

    from capplan_adapters.store.models import QueueMetricsRow

    with open_store(store_url).session() as s:
        return int(s.scalar(select(func.count()).select_from(QueueMetricsRow)) or 0)


def test_import_is_idempotent_and_export_round_trips(
    store_url: str, two_days: Path, tmp_path: Path
) -> None:
    store = open_store(store_url)
    source = read_metrics_file(two_days)
    first = import_metrics_file(store, two_days)
    assert first.rows == len(source) and first.written == len(source) and first.skipped == 0
    assert first.queues == DEMO_QUEUES
    again = import_metrics_file(store, two_days)
    assert (again.written, again.skipped) == (0, len(source))
    assert count_rows(store_url) == len(source)

    for name in ("emails.csv", "emails.csv.gz", "emails.parquet"):
        out = tmp_path / name
        n = export_metrics_file(store, "emails", out)
        want = source[source["queue"] == "emails"].reset_index(drop=True)
        assert n == len(want)
        pd.testing.assert_frame_equal(read_metrics_file(out), want)
        assert import_metrics_file(store, out).written == 0


def test_export_since_and_history_bounds(store_url: str, two_days: Path, tmp_path: Path) -> None:
    store = open_store(store_url)
    import_metrics_file(store, two_days)
    source = read_metrics_file(two_days)
    emails = source[source["queue"] == "emails"]
    since = emails["timestamp"].iloc[100].to_pydatetime()
    until = emails["timestamp"].iloc[200].to_pydatetime()
    history = store.metrics_history("emails", since, until)
    assert len(history) == 101  # both ends inclusive
    assert history["timestamp"].is_monotonic_increasing
    assert history["timestamp"].iloc[0] == since and history["timestamp"].iloc[-1] == until
    out = tmp_path / "since.csv"
    assert export_metrics_file(store, "emails", out, since=since) == len(emails) - 100
    assert store.metrics_history("no-such-queue", None).empty


def test_missing_numbers_are_stored_as_null_and_exported_empty(
    store_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "gaps.csv"
    path.write_text(
        HEADER + "2026-11-01T00:00:00Z,q,1.5,0.5,,2,\n2026-11-01T00:01:00Z,q,,0.5,3,2,4.25\n"
    )
    store = open_store(store_url)
    assert import_metrics_file(store, path).written == 2
    out = tmp_path / "back.csv"
    export_metrics_file(store, "q", out)
    lines = out.read_text().splitlines()
    assert lines[0] == HEADER.strip()
    assert lines[1:] == [
        "2026-11-01T00:00:00Z,q,1.5,0.5,,2.0,",
        "2026-11-01T00:01:00Z,q,,0.5,3.0,2.0,4.25",
    ]


@pytest.mark.parametrize(
    ("row3", "column", "shown"),
    [
        ("2026-11-01T00:02:00Z,q,abc,0.5,0,2,1", "arrival_rate", "'abc'"),
        ("2026-11-01T00:02:00Z,q,1,0.5,inf,2,1", "backlog", "'inf'"),
        ("2026-11-01T00:02:00Z,q,1,0.5,0,nan,1", "workers", "'nan'"),
        ("2026-11-01T00:02:00Z,q,1,0.5,0,2,-Infinity", "service_time_p95", "'-Infinity'"),
        ("yesterday,q,1,0.5,0,2,1", "timestamp", "'yesterday'"),
        (",q,1,0.5,0,2,1", "timestamp", "''"),
        ("2026-11-01T00:02:00Z,,1,0.5,0,2,1", "queue", "''"),
    ],
)
def test_a_bad_cell_names_row_and_column_and_nothing_is_written(
    store_url: str, tmp_path: Path, row3: str, column: str, shown: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        HEADER + "2026-11-01T00:00:00Z,q,1,0.5,0,2,1\n"
        "2026-11-01T00:01:00Z,q,1,0.5,0,2,1\n" + row3 + "\n"
        "2026-11-01T00:03:00Z,q,1,0.5,zzz,2,1\n"
    )
    with pytest.raises(MetricsImportError) as info:
        import_metrics_file(open_store(store_url), path)
    assert (info.value.row, info.value.column) == (3, column)
    assert f"row 3, column {column!r}" in str(info.value) and shown in str(info.value)
    assert count_rows(store_url) == 0


def test_a_bad_parquet_cell_is_refused(store_url: str, tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(["2026-11-01T00:00:00Z"] * 2, utc=True)
            + pd.to_timedelta([0, 60], unit="s"),
            "queue": ["q", "q"],
            "arrival_rate": [1.0, float("inf")],
            "service_rate": [0.5, 0.5],
            "backlog": [0.0, 1.0],
            "workers": [2.0, 2.0],
        }
    )
    path = tmp_path / "bad.parquet"
    frame.to_parquet(path)
    with pytest.raises(MetricsImportError) as info:
        import_metrics_file(open_store(store_url), path)
    assert (info.value.row, info.value.column) == (2, "arrival_rate")
    assert count_rows(store_url) == 0


def test_prune_removes_exactly_the_old_rows(store_url: str, two_days: Path) -> None:
    store = open_store(store_url)
    import_metrics_file(store, two_days)
    source = read_metrics_file(two_days)
    cut = (source["timestamp"].min() + pd.Timedelta(hours=30)).to_pydatetime()
    old = int((source["timestamp"] < cut).sum())
    assert 0 < old < len(source)
    assert store.prune_metrics(cut) == old
    assert count_rows(store_url) == len(source) - old
    assert store.metrics_history("emails", None)["timestamp"].min() >= cut
    assert store.prune_metrics(cut) == 0


def test_cli_import_json_then_export(cli, store_url: str, two_days: Path, tmp_path: Path) -> None:
    first = cli("metrics", "import", str(two_days), "--json")
    assert first.exit_code == 0, first.output
    body = json.loads(first.stdout)
    total = len(read_metrics_file(two_days))
    assert body == {
        "written": total,
        "skipped": 0,
        "queues": list(DEMO_QUEUES),
    }
    second = json.loads(cli("metrics", "import", str(two_days), "--json").stdout)
    assert (second["written"], second["skipped"]) == (0, total)

    since = datetime(2026, 11, 7, 0, 0, tzinfo=UTC)
    out = tmp_path / "reports.parquet"
    exported = cli(
        "metrics", "export", "--queue", "reports", "--since", "2026-11-07T00:00:00Z", str(out)
    )
    assert exported.exit_code == 0, exported.output
    back = read_metrics_file(out)
    src = read_metrics_file(two_days)
    want = src[(src["queue"] == "reports") & (src["timestamp"] >= since)].reset_index(drop=True)
    assert len(want) > 0
    pd.testing.assert_frame_equal(back, want)


def test_cli_bad_file_exits_2_naming_row_and_column(cli, store_url: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        HEADER + "2026-11-01T00:00:00Z,q,1,0.5,0,2,1\n2026-11-01T00:01:00Z,q,1,fast,0,2,1\n"
    )
    result = cli("metrics", "import", str(path), "--json")
    assert result.exit_code == 2
    said = " ".join(result.output.split())  # the console wraps long lines
    assert "row 2, column 'service_rate': not a number (got 'fast')" in said
    assert "nothing was written" in said
    assert count_rows(store_url) == 0


def test_cli_export_of_an_empty_queue_says_so(cli, tmp_path: Path) -> None:
    out = tmp_path / "none.csv"
    result = cli("metrics", "export", "--queue", "ghost", "--since", "2026-11-01", str(out))
    assert result.exit_code == 1
    assert "no metrics collected for queue 'ghost' since 2026-11-01T00:00:00+00:00" in (
        " ".join(result.output.split())
    )
    assert not out.exists()
    bad_since = cli("metrics", "export", "--queue", "ghost", "--since", "soon", str(out))
    assert bad_since.exit_code == 2 and "--since" in bad_since.output


def test_history_of_collected_rows_reads_the_extra_columns(store_url: str) -> None:
    store = open_store(store_url)
    at = datetime(2026, 11, 1, tzinfo=UTC)
    store.record_metrics(
        [
            {
                "queue_name": "live",
                "recorded_at": at + timedelta(minutes=i),
                "arrival_rate": 2.0,
                "service_rate": 1.0,
                "backlog": None,
                "workers": 3.0,
                "extra": {"service_time_p95": 1.5 + i, "service_time_scv": None, "source": "rq"},
            }
            for i in range(3)
        ]
    )
    h = store.metrics_history("live", at)
    assert list(h["service_time_p95"]) == [1.5, 2.5, 3.5]
    assert h["service_time_scv"].isna().all() and h["backlog"].isna().all()
    assert list(h["workers"]) == [3.0, 3.0, 3.0]
