"""Clean + data-quality stage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from capplan_core.policy import ScalingPolicy
from capplan_core.quality.clean import CleanResult, clean_queue, latest_state
from capplan_core.quality.expectations import QualityReport, QualityThresholds, check_queue

__all__ = [
    "Assessment",
    "CleanResult",
    "QualityReport",
    "QualityThresholds",
    "assess",
    "clean_queue",
    "check_queue",
    "latest_state",
]


@dataclass(frozen=True)
class Assessment:
    clean: CleanResult
    quality: QualityReport

    @property
    def plannable(self) -> bool:
        return self.quality.passed and not self.clean.empty


def assess(
    rows: pd.DataFrame, policy: ScalingPolicy, *, now: datetime, wall_clock: datetime | None = None
) -> Assessment:
    """Clean one queue's raw rows to the policy's planning interval and run the expectations
    (``wall_clock``, default the real one, bounds the "future" check: ``check_queue``)."""
    interval_s = policy.forecast.interval_minutes * 60.0
    clean = clean_queue(
        rows,
        queue=policy.queue,
        interval_s=interval_s,
        now=now,
        exclude_before=policy.exclude_before,
    )
    if rows.empty:
        report = QualityReport(
            queue=policy.queue,
            checks=[
                {
                    "expectation": "expect_table_row_count_to_be_between",
                    "label": "presence",
                    "column": None,
                    "severity": "critical",
                    "success": False,
                    "unexpected_count": None,
                    "unexpected_percent": None,
                    "sample": [],
                    "observed": 0,
                    "message": f"no metrics rows for queue {policy.queue!r}",
                }
            ],
        )
        return Assessment(clean, report)
    return Assessment(
        clean, check_queue(rows, clean, now=now, interval_s=interval_s, wall_clock=wall_clock)
    )
