"""What one job-level replication records, and the per-window reduction of a SimPy trace."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# worker slot states, shared by the SimPy and the fast engine
FREE, STARTING, IDLE, BUSY, DOWN = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class JobRunRecord:
    """One replication: each job's total time queued (s, arrival order, backlog jobs first),
    and per window the largest backlog (jobs waiting), busy and ready worker-seconds."""

    waits_s: np.ndarray
    window_max_backlog: np.ndarray
    window_busy_s: np.ndarray
    window_ready_s: np.ndarray


def windows_from_trace(
    times_s: np.ndarray,
    backlog: np.ndarray,
    busy: np.ndarray,
    ready: np.ndarray,
    edges_s: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """Per-window max backlog and busy/ready worker-seconds of a piecewise-constant trace.

    ``times_s`` are non-decreasing change times (the first at 0); each value holds until the
    next change and the last until the horizon ``edges_s[-1]``.
    """
    horizon = edges_s[-1]
    keep = times_s < horizon
    t, q, b, r = times_s[keep], backlog[keep], busy[keep], ready[keep]
    seg = np.diff(np.append(t, horizon))
    cum_busy = np.concatenate(([0.0], np.cumsum(b * seg)))
    cum_ready = np.concatenate(([0.0], np.cumsum(r * seg)))
    knots = np.append(t, horizon)
    busy_at = np.interp(edges_s, knots, cum_busy)
    ready_at = np.interp(edges_s, knots, cum_ready)
    # backlog at each window start = last value set at or before it, then the max inside
    first = np.searchsorted(t, edges_s[:-1], side="right") - 1
    n_w = edges_s.size - 1
    max_q = q[np.maximum(first, 0)].astype(float)
    inside = np.searchsorted(edges_s, t, side="right") - 1
    np.maximum.at(max_q, np.clip(inside, 0, n_w - 1), q.astype(float))
    return max_q, np.diff(busy_at), np.diff(ready_at)
