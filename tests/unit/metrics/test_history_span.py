"""How far back a policy's history is read from the store, and the skip reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from capplan_core.metrics.history import history_span, no_metrics_reason, read_history
from capplan_core.policy import ForecastSpec, ScalingPolicy

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _policy(seasonality: list[str]) -> ScalingPolicy:
    return ScalingPolicy.model_validate(
        {
            "name": "p",
            "queue": "q",
            "target": {"name": "w"},
            "slo": {"wait_p95_seconds": 5},
            "forecast": {"seasonality": seasonality},
        }
    )


def test_span_follows_the_season() -> None:
    assert history_span(ForecastSpec(seasonality=["daily", "weekly"])) == timedelta(days=28)
    assert history_span(ForecastSpec(seasonality=["daily"])) == timedelta(days=7)
    assert history_span(ForecastSpec(seasonality=[])) == timedelta(days=2)


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, datetime | None, datetime | None]] = []

    def metrics_history(
        self, queue: str, since: datetime | None, until: datetime | None = None
    ) -> pd.DataFrame:
        self.calls.append((queue, since, until))
        return pd.DataFrame()


def test_read_history_asks_for_the_span_up_to_now() -> None:
    rec = _Recorder()
    read_history(rec, _policy(["daily", "weekly"]), NOW)
    assert rec.calls == [("q", NOW - timedelta(days=28), NOW)]


def test_no_metrics_reason_names_queue_and_since() -> None:
    assert no_metrics_reason(_policy(["daily"]), NOW) == (
        "no metrics collected for queue q since 2026-11-22T12:00:00+00:00"
    )
