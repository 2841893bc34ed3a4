"""Backtest: replay history with capplan's plans against static, reactive and oracle baselines.

Public API: :func:`run_backtest`, :class:`BacktestResult`, :class:`BacktestError`,
:class:`ReactiveSpec`, :class:`HybridSpec`. See docs/backtest.md for the model and the JSON.
"""

from __future__ import annotations

from capplan_core.backtest.hybrid import HybridSpec
from capplan_core.backtest.run import STRATEGIES, BacktestError, BacktestResult, run_backtest
from capplan_core.backtest.strategies import ReactiveSpec

__all__ = [
    "STRATEGIES",
    "BacktestError",
    "BacktestResult",
    "HybridSpec",
    "ReactiveSpec",
    "run_backtest",
]
