"""One UTC convention: naive times are read as UTC, aware times are converted to UTC."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd


def utc_timestamp(t: datetime | pd.Timestamp | str) -> pd.Timestamp:
    """``t`` as a timezone-aware UTC ``pandas.Timestamp`` (naive input is taken as UTC)."""
    ts = pd.Timestamp(t)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def utc_datetime(t: datetime | pd.Timestamp | str) -> datetime:
    """``t`` as a timezone-aware UTC ``datetime`` (naive input is taken as UTC)."""
    if isinstance(t, datetime) and not isinstance(t, pd.Timestamp):
        return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    return utc_timestamp(t).to_pydatetime()
