"""The picture of a shared pool's backtest: each queue's work stacked, each strategy's
workers, and the windows in which a queue missed its own SLO (one row of marks per queue
and strategy)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from capplan_core.backtest.demand import DemandTrace  # noqa: E402
from capplan_core.backtest.figure import COLOURS  # noqa: E402


class SharedDrawable(Protocol):
    """What the picture reads from a shared pool's result (``shared.SharedBacktestResult``,
    which imports this module lazily to draw itself)."""

    policy: str
    discipline: str
    queues: tuple[str, ...]
    traces: dict[str, DemandTrace]
    strategies: dict[str, Any]  # name -> PoolScore
    workers: dict[str, np.ndarray]

    @property
    def starts(self) -> pd.DatetimeIndex: ...


def draw_shared_backtest(result: SharedDrawable, path: Path) -> Path:
    """Two panels sharing the time axis: work per queue (busy workers it needs, stacked)
    under each strategy's mean workers; then each queue's missed windows per strategy."""
    t = result.starts.tz_convert(None)
    fig, (ax_w, ax_m) = plt.subplots(
        2, 1, figsize=(13, 8), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    work = [tr.arrival_rate_per_s / tr.service_rate_per_s for tr in result.traces.values()]
    ax_w.stackplot(t, *work, labels=[f"work of {q}" for q in result.traces], alpha=0.3, step="post")
    for name, w in result.workers.items():
        ax_w.step(t, w, where="post", color=COLOURS.get(name), label=f"{name} workers", lw=1.2)
    ax_w.set_ylabel("workers (busy workers needed, stacked)")
    ax_w.set_title(
        f"backtest of shared pool {result.policy} ({result.discipline}: "
        f"{' then '.join(result.queues)})"
    )
    ax_w.legend(loc="upper left", fontsize=8, ncol=2)
    labels = []
    for row, (name, s) in enumerate(result.strategies.items()):
        for k, (q, qs) in enumerate(s.queues.items()):
            y = row * len(s.queues) + k
            labels.append((y, f"{name}: {q} {qs.slo_attainment:.1%}"))
            missed = t[~qs.met]
            ax_m.plot(missed, [y] * len(missed), "x", color=COLOURS.get(name), ms=5)
    ax_m.set_yticks([y for y, _ in labels], [lbl for _, lbl in labels], fontsize=7)
    ax_m.set_ylim(-0.5, len(labels) - 0.5)
    ax_m.set_title("windows in which a queue missed its SLO", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
