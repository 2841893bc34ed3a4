"""Each critical expectation, broken, blocks that queue's plan and names the bad values;
a healthy queue beside it passes. Cleaning drops and fills as documented."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capplan_core.policy import parse_policies
from capplan_core.quality import assess
from capplan_core.quality.clean import clean_queue, robust_outliers

NOW = pd.Timestamp("2026-11-20T12:00:00Z")


def _policy(queue="q"):
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


def healthy(queue="q", hours=48, seed=1):
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


def test_healthy_queue_passes_every_critical_check():
    a = assess(healthy(), _policy(), now=NOW)
    assert a.quality.passed and a.plannable
    assert a.quality.critical_failures == []


@pytest.mark.parametrize(
    ("breaker", "needle"),
    [
        (
            lambda f: f.assign(
                arrival_rate=np.where(np.arange(len(f)) % 10 == 0, -1.0, f.arrival_rate)
            ),
            "expect_column_values_to_be_between(arrival_rate) failed",
        ),
        (
            lambda f: f.assign(
                service_rate=np.where(np.arange(len(f)) % 20 == 0, np.nan, f.service_rate)
            ),
            "expect_column_values_to_not_be_null(service_rate) failed",
        ),
        (
            lambda f: f.assign(service_rate=0.0),
            "expect_column_values_to_be_between(service_rate) failed",
        ),
        (
            lambda f: pd.concat([f, f.iloc[::20]]).sort_values("timestamp"),
            "expect_column_values_to_be_unique(timestamp) failed",
        ),
        (lambda f: f.iloc[::-1], "expect_column_values_to_be_increasing(timestamp) failed"),
        (lambda f: f[f.timestamp < NOW - pd.Timedelta(hours=3)], "freshness"),
        (
            lambda f: f[
                (f.timestamp < NOW - pd.Timedelta(hours=30))
                | (f.timestamp > NOW - pd.Timedelta(hours=2))
            ],
            "coverage",
        ),
        (lambda f: f.assign(workers=-1.0), "expect_column_values_to_be_between(workers) failed"),
    ],
    ids=[
        "negative-rate",
        "null",
        "zero-service-rate",
        "duplicates",
        "unordered",
        "stale",
        "coverage",
        "negative-workers",
    ],
)
def test_each_critical_expectation_blocks_the_queue_and_names_the_values(breaker, needle):
    bad = breaker(healthy("bad")).reset_index(drop=True)
    good = healthy("good", seed=2)
    verdict_bad = assess(bad, _policy("bad"), now=NOW)
    verdict_good = assess(good, _policy("good"), now=NOW)
    assert not verdict_bad.plannable
    assert needle in verdict_bad.quality.reason
    assert verdict_good.plannable


def test_failure_message_carries_sample_values():
    f = healthy()
    f.loc[::10, "arrival_rate"] = -3.5
    reason = assess(f, _policy(), now=NOW).quality.reason
    assert "-3.5" in reason and "unexpected" in reason


def test_a_few_bad_rows_are_reported_dropped_and_the_queue_still_planned():
    f = healthy()
    f.loc[[100, 200, 300], "arrival_rate"] = -1.0
    a = assess(f, _policy(), now=NOW)
    assert a.plannable
    check = next(
        c
        for c in a.quality.checks
        if c["column"] == "arrival_rate"
        and c["expectation"] == "expect_column_values_to_be_between"
    )
    assert check["unexpected_count"] == 3 and check["success"]
    assert a.clean.report["rows_dropped_invalid"] == 3


def test_missing_queue_is_not_planned_and_says_so():
    a = assess(healthy().iloc[0:0], _policy("ghost"), now=NOW)
    assert not a.plannable
    assert "no metrics rows for queue 'ghost'" in a.quality.reason


def test_cleaning_resamples_fills_short_gaps_and_marks_long_ones():
    f = healthy(hours=12)
    short = (f.timestamp >= NOW - pd.Timedelta(hours=6)) & (
        f.timestamp < NOW - pd.Timedelta(hours=5, minutes=30)
    )
    long = (f.timestamp >= NOW - pd.Timedelta(hours=10)) & (
        f.timestamp < NOW - pd.Timedelta(hours=8)
    )
    c = clean_queue(f[~short & ~long], queue="q", interval_s=900, now=NOW.to_pydatetime())
    s = c.series
    assert len(s) == 48 and s.index.freq is not None or len(s) == 48
    assert s["filled"].sum() == 2
    assert c.report["gaps"] == [
        {
            "start": (NOW - pd.Timedelta(hours=10)).isoformat(),
            "end": (NOW - pd.Timedelta(hours=8)).isoformat(),
            "intervals": 8,
        }
    ]
    assert s["arrival_rate"].dropna().between(1.8, 2.2).all()


def test_exclude_before_discards_old_history():
    f = healthy(hours=12)
    cut = NOW - pd.Timedelta(hours=4)
    c = clean_queue(
        f, queue="q", interval_s=900, now=NOW.to_pydatetime(), exclude_before=cut.to_pydatetime()
    )
    assert c.series.index[0] == cut
    assert c.report["rows_dropped_exclude_before"] == int((f.timestamp < cut).sum()) > 400


def test_robust_outliers_flag_a_spike_not_the_daily_shape():
    t = np.arange(96 * 3)
    v = pd.Series(10 + 5 * np.sin(2 * np.pi * t / 96))
    v[150] = 60
    flags = robust_outliers(v)
    assert flags[150] and flags.sum() == 1
