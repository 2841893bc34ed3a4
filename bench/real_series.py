"""Real public demand series that installed packages ship, as capplan metric rows.

- ``taylor``: half-hourly electricity demand of England and Wales, Monday 5 June to Sunday
  27 August 2000 (12 weeks, 4,032 values, MW), from J. W. Taylor (2003), "Short-term
  electricity demand forecasting using double seasonal exponential smoothing", *JORS* 54,
  799-805; shipped in ``pmdarima.datasets.load_taylor`` (R's ``forecast::taylor``). Read as
  a queue: MW / 1000 x 1.2 = jobs/s, so the pool needs about 450-930 busy workers for 20-s
  jobs — the shape of issue 15's week (weekday/weekend switch, Monday mornings).
- ``elec_equip``: Eurostat's monthly turnover index of electrical-equipment manufacturing in
  the euro area, 1995-2015, not seasonally adjusted; shipped in
  ``statsmodels.datasets.elec_equip``. Time compressed so one year becomes one day (a month =
  2 h), interpolated to 15-min windows, index 100 = 8 jobs/s, seeded Poisson count noise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TAYLOR_START = pd.Timestamp("2000-06-05T00:00:00Z")  # a Monday
TAYLOR_JOBS_PER_S_PER_MW = 1.2e-3
TAYLOR_SERVICE_RATE = 0.05  # 20-s jobs
ELEC_DAY0 = pd.Timestamp("2026-01-01T00:00:00Z")
ELEC_JOBS_PER_S_AT_INDEX_100 = 8.0
ELEC_SERVICE_RATE = 0.5


def _rows(
    idx: pd.DatetimeIndex, rate: np.ndarray, queue: str, mu: float, utilization: float = 0.8
) -> pd.DataFrame:
    n = len(idx)
    return pd.DataFrame(
        {
            "timestamp": idx,
            "queue": queue,
            "arrival_rate": rate,
            "service_rate": np.full(n, mu),
            "backlog": np.zeros(n),
            "workers": np.ceil(rate / mu / utilization),
            "service_time_scv": np.ones(n),
        }
    )


def taylor_rows() -> pd.DataFrame:
    """Taylor's half-hourly demand as metric rows of queue ``taylor`` (30-min rows)."""
    from pmdarima.datasets import load_taylor

    mw = np.asarray(load_taylor(), dtype=float)
    idx = pd.date_range(TAYLOR_START, periods=len(mw), freq="30min")
    return _rows(idx, mw * TAYLOR_JOBS_PER_S_PER_MW, "taylor", TAYLOR_SERVICE_RATE)


def elec_equip_rows(seed: int = 0) -> tuple[pd.DataFrame, list[int]]:
    """statsmodels' elec_equip, one year per day, as metric rows of queue ``elec``."""
    from statsmodels.datasets import elec_equip

    s = elec_equip.load_pandas().data.iloc[:, 0]
    years = sorted({t.year for t in s.index if (s.index.year == t.year).sum() == 12})
    values = np.concatenate([s[s.index.year == y].to_numpy() for y in years])
    # month m of day d sits at the middle of its 2-hour slot; 8 windows of 15 min per month
    month_mid = ELEC_DAY0 + pd.to_timedelta(np.arange(len(values)) * 2 + 1, unit="h")
    idx = pd.date_range(ELEC_DAY0, periods=len(values) * 8, freq="15min")
    centre = idx + pd.Timedelta(minutes=7.5)
    level = np.interp(centre.asi8, month_mid.asi8, values) / 100.0 * ELEC_JOBS_PER_S_AT_INDEX_100
    rng = np.random.default_rng(seed)
    rate = rng.poisson(level * 900.0) / 900.0
    return _rows(idx, rate, "elec", ELEC_SERVICE_RATE), years
