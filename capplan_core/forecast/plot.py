"""A PNG of history, forecast mean and interval bands (for Prefect artifacts and the CLI).

The layout follows the fan charts of Hyndman & Athanasopoulos, *FPP3* §5.5: darker bands for
narrower intervals, the point forecast as a line continuing the history.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from capplan_core.forecast.result import ForecastResult


def forecast_figure(
    history: pd.Series, result: ForecastResult, path: str | Path, *, tail_windows: int = 672
) -> Path:
    """Draw ``history`` (jobs/s; its last ``tail_windows`` points) and ``result`` to ``path``.

    Uses the non-interactive Agg backend, so it works without a display. Returns the path.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    out = Path(path)
    fig, ax = plt.subplots(figsize=(10, 4), dpi=100)
    try:
        hist = history.dropna()
        if len(hist):
            hist = hist.iloc[-tail_windows:]
            ax.plot(hist.index, hist.to_numpy(dtype=float), color="0.3", lw=0.8, label="history")
        x = result.timestamps
        for i, (level, (lo, hi)) in enumerate(sorted(result.bounds.items(), reverse=True)):
            ax.fill_between(
                x,
                lo,
                hi,
                color="tab:blue",
                alpha=0.18 + 0.12 * i,
                lw=0,
                label=f"{round(level * 100)}% interval",
            )
        ax.plot(x, result.mean, color="tab:blue", lw=1.5, label=f"forecast ({result.model})")
        ax.set_title(f"{result.queue}: arrival rate forecast")
        ax.set_ylabel("arrival rate (jobs/s)")
        ax.set_ylim(bottom=0, top=_top(hist, result))
        ax.legend(loc="upper left", fontsize=8)
        fig.autofmt_xdate()
        fig.tight_layout()
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format="png")
    finally:
        plt.close(fig)
    return out


def _top(history: pd.Series, result: ForecastResult) -> float:
    highs = [float(np.nanmax(hi)) for _, hi in result.bounds.values() if len(hi)]
    if len(history):
        highs.append(float(np.nanmax(history.to_numpy(dtype=float))))
    if len(result.mean):
        highs.append(float(np.max(result.mean)))
    top = max(highs) if highs else 1.0
    return top * 1.08 if top > 0 else 1.0
