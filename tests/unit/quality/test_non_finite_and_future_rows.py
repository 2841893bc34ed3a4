"""Issue 13: `inf` in a metrics file and rows from the future fail their own queue, with the
reason, and never another queue (docs/architecture.md, "Metrics file")."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capplan_core.metrics.file_source import data_end, read_queue_rows
from capplan_core.policy import parse_policies
from capplan_core.quality import assess, latest_state

NOW = pd.Timestamp("2026-11-20T12:00:00Z")
WALL = NOW + pd.Timedelta(hours=1)


def _policy(queue):
    return parse_policies(
        {
            "policies": [
                {
                    "name": queue,
                    "queue": queue,
                    "target": {"name": "w"},
                    "slo": {"wait_p95_seconds": 30},
                    "forecast": {"interval_minutes": 15},
                }
            ]
        }
    )[0]


def _rows(queue, hours=48, seed=1):
    rng = np.random.default_rng(seed)
    ts = pd.date_range(end=NOW, periods=hours * 60, freq="1min", inclusive="left", tz="UTC")
    return pd.DataFrame(
        {
            "timestamp": ts,
            "queue": queue,
            "arrival_rate": 2 + 0.1 * rng.standard_normal(len(ts)),
            "service_rate": 0.5,
            "backlog": 0.0,
            "workers": 6.0,
        }
    )


def _write(tmp_path, frames, name="m.csv"):
    path = tmp_path / name
    pd.concat(frames, ignore_index=True).assign(
        timestamp=lambda f: f.timestamp.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    ).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("column", ["arrival_rate", "service_rate", "backlog", "workers"])
def test_inf_in_a_file_fails_its_queue_by_name_and_not_the_other(tmp_path, column):
    bad = _rows("bad")
    bad.loc[bad.index % 10 == 0, column] = np.inf  # 10% of rows: beyond the tolerance
    path = _write(tmp_path, [_rows("good"), bad])
    verdicts = {
        q: assess(read_queue_rows(path, q), _policy(q), now=NOW, wall_clock=WALL)
        for q in ("good", "bad")
    }
    assert verdicts["good"].plannable
    reason = verdicts["bad"].quality.reason
    assert not verdicts["bad"].plannable
    n_bad = int((bad.index % 10 == 0).sum())
    assert (
        f"expect_column_values_to_be_between({column}) failed: {n_bad} of {len(bad)} rows" in reason
    )
    assert "inf" in reason


def test_inf_1e400_and_minus_inf_parse_as_numbers_and_are_refused(tmp_path):
    bad = _rows("bad").astype({"arrival_rate": object})
    bad.loc[bad.index % 10 == 0, "arrival_rate"] = "1e400"
    bad.loc[bad.index % 10 == 5, "arrival_rate"] = "-inf"
    path = _write(tmp_path, [bad])
    rows = read_queue_rows(path, "bad")
    assert np.isinf(rows["arrival_rate"]).sum() == int(
        (bad.index % 10 == 0).sum() + (bad.index % 10 == 5).sum()
    )
    assert not assess(rows, _policy("bad"), now=NOW, wall_clock=WALL).plannable


def test_a_few_inf_rows_are_dropped_and_the_state_stays_finite():
    rows = _rows("q")
    rows.loc[rows.index[-3:], "workers"] = np.inf  # the newest reports: the pool size
    rows.loc[rows.index[5], "arrival_rate"] = np.inf
    a = assess(rows, _policy("q"), now=NOW, wall_clock=WALL)
    assert a.plannable
    assert a.clean.report["rows_dropped_invalid"] == 4
    state = latest_state(a.clean)
    assert state["current_workers"] == 6.0 and np.isfinite(a.clean.series["arrival_rate"]).all()


def test_inf_in_an_optional_column_fails_the_queue():
    rows = _rows("q").assign(service_time_p95=np.where(np.arange(2879) % 10 == 0, np.inf, 3.0))
    reason = assess(rows, _policy("q"), now=NOW, wall_clock=WALL).quality.reason
    assert "expect_column_values_to_be_between(service_time_p95) failed" in reason


def test_one_far_future_row_is_not_the_files_now(tmp_path):
    future = _rows("clock").tail(1).assign(timestamp=pd.Timestamp("2099-01-01T00:00:00Z"))
    path = _write(tmp_path, [_rows("a"), _rows("b"), _rows("clock"), future])
    end = data_end(path, wall_clock=WALL)
    assert end == NOW - pd.Timedelta(minutes=1)
    verdicts = {
        q: assess(read_queue_rows(path, q), _policy(q), now=end, wall_clock=WALL)
        for q in ("a", "b", "clock")
    }
    assert verdicts["a"].plannable and verdicts["b"].plannable
    assert not verdicts["clock"].plannable
    reason = verdicts["clock"].quality.reason
    assert (
        "future: 1 row(s) newer than the run's clock plus the skew allowance "
        "(2026-11-20T13:05:00+00:00), e.g. ['2099-01-01T00:00:00+00:00']" in reason
    )


def test_rows_within_the_skew_allowance_are_not_future(tmp_path):
    near = _rows("a").tail(1).assign(timestamp=WALL + pd.Timedelta(seconds=240))
    path = _write(tmp_path, [_rows("a"), near])
    assert data_end(path, wall_clock=WALL) == WALL + pd.Timedelta(seconds=240)
    rows = read_queue_rows(path, "a")
    report = assess(rows, _policy("a"), now=NOW, wall_clock=WALL).quality
    assert [c["success"] for c in report.checks if c["label"] == "future"] == [True]


def test_a_replay_before_the_files_end_is_not_future():
    # as_of mid-file: the rows after it are real (before the wall clock), not from the future
    report = assess(
        _rows("q"), _policy("q"), now=NOW - pd.Timedelta(hours=6), wall_clock=WALL
    ).quality
    assert [c["success"] for c in report.checks if c["label"] == "future"] == [True]


def test_a_file_wholly_ahead_of_the_wall_clock_keeps_its_newest_row(tmp_path):
    path = _write(tmp_path, [_rows("a")])
    assert data_end(path, wall_clock=NOW - pd.Timedelta(days=30)) == NOW - pd.Timedelta(minutes=1)
