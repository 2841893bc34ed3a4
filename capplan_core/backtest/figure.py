"""The backtest picture: demand, each strategy's workers and scaling actions, and the windows
that missed the SLO.

It draws anything shaped like a ``BacktestResult`` (:class:`Drawable`), so this module does
not import ``run`` (which imports it, lazily, to draw itself).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import matplotlib
import numpy as np
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first

from capplan_core.backtest.demand import DemandTrace  # noqa: E402
from capplan_core.backtest.scoring import StrategyScore  # noqa: E402

COLOURS = {
    "predictive": "tab:blue",
    "hybrid": "tab:purple",
    "reactive": "tab:orange",
    "static_peak": "tab:gray",
    "oracle": "tab:green",
    "rate_oracle": "tab:olive",
}


class Drawable(Protocol):
    """What the picture reads from a backtest result."""

    policy: str
    queue: str
    window_s: float
    trace: DemandTrace
    strategies: dict[str, StrategyScore]
    workers: dict[str, np.ndarray]
    actions: dict[str, list[tuple[pd.Timestamp, int, int]]]
    met_probability: np.ndarray
    calibration: dict[str, Any]

    @property
    def start(self) -> pd.Timestamp: ...

    @property
    def end(self) -> pd.Timestamp: ...


def draw_backtest(result: Drawable, path: Path) -> Path:
    """Three panels sharing the time axis, and below them the reliability diagram of the
    predictive plans' P(met) and two heat maps by hour of the week (windows missed, extra
    worker-hours over the oracle); returns ``path``."""
    t = result.trace.starts.tz_convert(None)
    fig = plt.figure(figsize=(13, 12))
    grid = fig.add_gridspec(4, 3, height_ratios=[2, 3, 1, 3])
    ax_d = fig.add_subplot(grid[0, :])
    ax_w = fig.add_subplot(grid[1, :], sharex=ax_d)
    ax_m = fig.add_subplot(grid[2, :], sharex=ax_d)
    ax_d.step(t, result.trace.arrival_rate_per_s, where="post", color="black")
    ax_d.set_ylabel("arrivals (jobs/s)")
    ax_d.set_title(
        f"backtest {result.policy} ({result.queue}): "
        f"{result.start:%Y-%m-%d %H:%M} .. {result.end:%Y-%m-%d %H:%M} UTC"
    )
    names = list(result.strategies)
    for name in names:
        s = result.strategies[name]
        ax_w.step(
            t,
            result.workers[name],
            where="post",
            color=COLOURS.get(name),
            label=f"{name}: {s.slo_attainment:.1%} SLO, {s.worker_hours:.0f} worker-h, "
            f"{s.actions_per_day:.0f} actions/day",
        )
        acts = result.actions.get(name, []) if name != "oracle" else []
        if acts:  # one dot per scaling action, at the new replica count
            ax_w.plot(
                [a[0].tz_convert(None) for a in acts],
                [a[2] for a in acts],
                ".",
                color=COLOURS.get(name),
                markersize=3,
            )
    ax_w.set_ylabel("workers (mean per window)")
    ax_w.legend(loc="upper left", fontsize=8)
    width = result.window_s / 86_400.0
    for row, name in enumerate(names):
        missed = [i for i, w in enumerate(result.strategies[name].windows) if not w.meets_slo]
        ax_m.bar(
            [t[i] for i in missed],
            0.8,
            width=width,
            bottom=row - 0.4,
            align="edge",
            color="tab:red",
        )
    ax_m.set_yticks(range(len(names)), names, fontsize=8)
    ax_m.set_ylim(-0.6, len(names) - 0.4)
    ax_m.set_ylabel("SLO missed")
    for ax in (ax_d, ax_w):
        ax.tick_params(labelbottom=False)
    _reliability(fig.add_subplot(grid[3, 0]), result.calibration)
    misses, extra = hour_of_week(result)
    _heat(fig, fig.add_subplot(grid[3, 1]), misses, "predictive: windows missed", "Reds")
    _heat(fig, fig.add_subplot(grid[3, 2]), extra, "predictive: worker-h over the oracle", "Blues")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def hour_of_week(result: Drawable, name: str = "predictive") -> tuple[np.ndarray, np.ndarray]:
    """(7 x 24) windows missed and worker-hours over the oracle's, by day and hour (UTC)."""
    starts = result.trace.starts
    misses = np.zeros((7, 24))
    extra = np.zeros((7, 24))
    if name not in result.strategies:
        return misses, extra
    hours = result.window_s / 3600.0
    over = (result.workers[name] - result.workers["oracle"]) * hours
    for i, ts in enumerate(starts):
        d, h = ts.dayofweek, ts.hour
        extra[d, h] += over[i]
        if (
            not result.strategies[name].windows[i].meets_slo
            and result.trace.arrival_rate_per_s[i] > 0
        ):
            misses[d, h] += 1
    return misses, extra


def _heat(fig: Any, ax: Any, grid: np.ndarray, title: str, cmap: str) -> None:
    im = ax.imshow(
        grid,
        aspect="auto",
        cmap=cmap,
        interpolation="nearest",
        vmin=0.0,
        vmax=max(1.0, float(np.max(grid))),
    )
    ax.set_yticks(range(7), DAYS, fontsize=7)
    ax.set_xticks(range(0, 24, 3), [f"{h:02d}" for h in range(0, 24, 3)], fontsize=7)
    ax.set_xlabel("hour of the week (UTC)", fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)


def _reliability(ax: Any, calibration: dict[str, Any]) -> None:
    bins = [b for b in calibration.get("bins", []) if b["windows"]]
    ax.plot([0.5, 1.0], [0.5, 1.0], ":", color="gray", label="calibrated")
    if bins:
        x = [b["mean_p_met"] for b in bins]
        y = [b["observed"] for b in bins]
        n = np.asarray([b["windows"] for b in bins], dtype=float)
        se = np.sqrt(np.clip(np.asarray(x) * (1 - np.asarray(x)), 1e-4, None) / n)
        ax.errorbar(
            x, y, yerr=2 * se, fmt="o", color="tab:blue", capsize=2, label="windows met (±2 s.e.)"
        )
        for xi, yi, ni in zip(x, y, n, strict=True):
            ax.annotate(
                f"{int(ni)}", (xi, yi), fontsize=6, xytext=(3, -8), textcoords="offset points"
            )
    ax.set_xlim(0.5, 1.0)
    ax.set_ylim(0.5, 1.02)
    ax.set_xlabel("planned P(met)", fontsize=8)
    ax.set_ylabel("share of windows met", fontsize=8)
    brier = calibration.get("brier")
    ax.set_title(
        "reliability of P(met)" + (f" (Brier {brier:.4f})" if brier is not None else ""), fontsize=9
    )
    ax.legend(fontsize=7, loc="lower right")
