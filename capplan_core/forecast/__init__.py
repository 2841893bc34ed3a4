"""Forecasting engine: arrival-rate forecasts with calibrated intervals (docs/CONTRACTS.md).

Public API: :func:`forecast_queue`, :class:`ForecastResult`, :class:`NoHistoryError`.
"""

from __future__ import annotations

from capplan_core.forecast.engine import forecast_queue
from capplan_core.forecast.result import ForecastResult, NoHistoryError

__all__ = ["ForecastResult", "NoHistoryError", "forecast_queue"]
