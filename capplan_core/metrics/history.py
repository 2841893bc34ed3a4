"""A policy's history from the store: the span its forecaster needs, up to "now"."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

import pandas as pd

from capplan_core.policy import ForecastSpec, ScalingPolicy
from capplan_core.utc import utc_datetime

#: with a weekly season: four weeks (two full weeks turn weekly terms on; four give the
#: rolling-origin evaluation held-out weeks)
WEEKLY_HISTORY = timedelta(days=28)
#: daily season only: a week (two full days turn seasonal models on)
DAILY_HISTORY = timedelta(days=7)
#: no season: two days (enough for level and trend, and for the anomaly check's day)
NON_SEASONAL_HISTORY = timedelta(days=2)


class HistoryReader(Protocol):
    """A store that gives one queue's stored metric rows (``queue_metrics``) for a span, in
    the metrics-file columns: what planning and ``capplan metrics export`` read."""

    def metrics_history(
        self, queue: str, since: datetime | None, until: datetime | None = None
    ) -> pd.DataFrame: ...


def history_span(spec: ForecastSpec) -> timedelta:
    """How far back the forecaster of ``spec`` reads (see the constants above)."""
    if "weekly" in spec.seasonality:
        return WEEKLY_HISTORY
    if "daily" in spec.seasonality:
        return DAILY_HISTORY
    return NON_SEASONAL_HISTORY


def history_since(policy: ScalingPolicy, now: datetime) -> datetime:
    """The oldest time the policy's history read starts at."""
    return utc_datetime(now) - history_span(policy.forecast)


def read_history(store: HistoryReader, policy: ScalingPolicy, now: datetime) -> pd.DataFrame:
    """The policy's queue rows from ``history_since`` to ``now`` (metrics-file columns).

    Empty when nothing was collected in that span. A store error propagates (the caller's
    retries apply; nothing is planned from a partial read).
    """
    until = utc_datetime(now)
    return store.metrics_history(policy.queue, history_since(policy, until), until)


def no_metrics_reason(policy: ScalingPolicy, now: datetime) -> str:
    """Why a queue with no stored rows in its span is skipped."""
    since = history_since(policy, now)
    return f"no metrics collected for queue {policy.queue} since {since.isoformat()}"
