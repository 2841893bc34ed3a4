"""One UTC convention: naive times are read as UTC, aware times are converted to UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:  # pandas is imported only when a pandas value is at hand (CLI start-up)
    import pandas as pd


def utc_timestamp(t: datetime | pd.Timestamp | str) -> pd.Timestamp:
    """``t`` as a timezone-aware UTC ``pandas.Timestamp`` (naive input is taken as UTC)."""
    import pandas as pd

    ts = pd.Timestamp(t)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def utc_datetime(t: datetime | pd.Timestamp | str) -> datetime:
    """``t`` as a timezone-aware UTC ``datetime`` (naive input is taken as UTC)."""
    if isinstance(t, datetime) and type(t).__module__ == "datetime":  # not a pd.Timestamp
        return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    return cast(datetime, utc_timestamp(t).to_pydatetime())
