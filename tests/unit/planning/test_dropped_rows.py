"""What a plan stands on (issue 22): rows dropped by cleaning are reported per queue — how many,
which column, why — in the quality report, the plan's details, ``capplan plan --json`` and
the plan artifact. An ``inf`` arrival rate used to be dropped without a word."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from capplan_cli.runner import public
from capplan_core.planning.markdown import plan_markdown
from capplan_core.quality.clean import clean_queue
from capplan_core.quality.expectations import QualityReport

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def _rows() -> pd.DataFrame:
    idx = pd.date_range(end=pd.Timestamp(NOW) - pd.Timedelta(minutes=1), periods=30, freq="1min")
    n = len(idx)
    rows = pd.DataFrame(
        {
            "timestamp": idx,
            "queue": "q",
            "arrival_rate": np.full(n, 2.0),
            "service_rate": np.ones(n),
            "backlog": np.zeros(n),
            "workers": np.full(n, 3.0),
        }
    )
    rows.loc[3, "arrival_rate"] = np.inf
    rows.loc[4, "arrival_rate"] = -1.0
    rows.loc[5, "service_rate"] = 0.0
    rows.loc[6, "backlog"] = np.nan
    return pd.concat([rows, rows.iloc[[10]]], ignore_index=True)  # one duplicate


def test_cleaning_says_how_many_rows_which_column_and_why() -> None:
    report = clean_queue(_rows(), queue="q", interval_s=300.0, now=NOW).report
    assert report["dropped_rows"] == [
        {"column": "arrival_rate", "reason": "non-finite (inf)", "rows": 1},
        {"column": "arrival_rate", "reason": "negative", "rows": 1},
        {"column": "backlog", "reason": "null", "rows": 1},
        {"column": "service_rate", "reason": "zero (no worker completes anything)", "rows": 1},
        {"column": "timestamp", "reason": "duplicate (the last report kept)", "rows": 1},
    ]
    assert report["rows_dropped_invalid"] == 4


def test_plan_json_and_artifact_show_the_dropped_rows() -> None:
    dropped = [{"column": "arrival_rate", "reason": "non-finite (inf)", "rows": 1}]
    q = QualityReport(queue="q", dropped_rows=dropped).as_dict()
    assert q["dropped_rows"] == dropped
    result = {"queue": "q", "status": "preview", "details": {"dropped_rows": dropped}}
    assert public(result)["dropped_rows"] == dropped
    md = plan_markdown(
        {
            "id": None,
            "queue": "q",
            "policy": "q",
            "mode": "manual",
            "current_workers": 1,
            "target_workers": 2,
            "confidence": 0.9,
            "slo_achievable": True,
            "steps": [],
        },
        {"dropped_rows": dropped},
    )
    assert "**Rows dropped by cleaning:** 1 (arrival_rate: non-finite (inf))" in md
