"""The backtest picture: demand, each strategy's workers and scaling actions, and the windows
that missed the SLO.

It draws anything shaped like a ``BacktestResult`` (:class:`Drawable`), so this module does
not import ``run`` (which imports it, lazily, to draw itself).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import matplotlib
import numpy as np
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first

from capplan_core.backtest.demand import DemandTrace  # noqa: E402
from capplan_core.backtest.scoring import StrategyScore  # noqa: E402

COLOURS = {"predictive": "tab:blue", "hybrid": "tab:purple", "reactive": "tab:orange",
           "static_peak": "tab:gray", "oracle": "tab:green"}


class Drawable(Protocol):
    """What the picture reads from a backtest result."""

    policy: str
    queue: str
    window_s: float
    trace: DemandTrace
    strategies: dict[str, StrategyScore]
    workers: dict[str, np.ndarray]
    actions: dict[str, list[tuple[pd.Timestamp, int, int]]]

    @property
    def start(self) -> pd.Timestamp: ...

    @property
    def end(self) -> pd.Timestamp: ...


def draw_backtest(result: Drawable, path: Path) -> Path:
    """Three panels sharing the time axis; returns ``path``."""
    t = result.trace.starts.tz_convert(None)
    fig, (ax_d, ax_w, ax_m) = plt.subplots(
        3, 1, figsize=(12, 8), sharex=True, gridspec_kw={"height_ratios": [2, 3, 1]})
    ax_d.step(t, result.trace.arrival_rate_per_s, where="post", color="black")
    ax_d.set_ylabel("arrivals (jobs/s)")
    ax_d.set_title(f"backtest {result.policy} ({result.queue}): "
                   f"{result.start:%Y-%m-%d %H:%M} .. {result.end:%Y-%m-%d %H:%M} UTC")
    names = list(result.strategies)
    for name in names:
        s = result.strategies[name]
        ax_w.step(t, result.workers[name], where="post", color=COLOURS.get(name),
                  label=f"{name}: {s.slo_attainment:.1%} SLO, {s.worker_hours:.0f} worker-h, "
                        f"{s.actions_per_day:.0f} actions/day")
        acts = result.actions.get(name, []) if name != "oracle" else []
        if acts:       # one dot per scaling action, at the new replica count
            ax_w.plot([a[0].tz_convert(None) for a in acts], [a[2] for a in acts], ".",
                      color=COLOURS.get(name), markersize=3)
    ax_w.set_ylabel("workers (mean per window)")
    ax_w.legend(loc="upper left", fontsize=8)
    width = result.window_s / 86_400.0
    for row, name in enumerate(names):
        missed = [i for i, w in enumerate(result.strategies[name].windows) if not w.meets_slo]
        ax_m.bar([t[i] for i in missed], 0.8, width=width, bottom=row - 0.4, align="edge",
                 color="tab:red")
    ax_m.set_yticks(range(len(names)), names, fontsize=8)
    ax_m.set_ylim(-0.6, len(names) - 0.4)
    ax_m.set_ylabel("SLO missed")
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
