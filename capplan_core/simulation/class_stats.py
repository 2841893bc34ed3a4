"""Per-class results of a shared-pool simulation: waits and SLO per class, with intervals.

Each replication gives, per class, four values over its jobs arriving after the warm-up: the
mean wait, P(wait > 0), the wait quantile at the class's ``slo_wait_quantile`` and the share of
jobs waiting longer than its ``slo_wait_s`` (NaN without one). Intervals are Student t over
replications, or over ``N_BATCHES`` batch means of a single run (Law, *Simulation Modeling and
Analysis*, 5th ed., §9.5.3), as for the pool's own figures (``stats``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from scipy import stats as sps

from capplan_core.simulation.class_summary import ClassSummary

if TYPE_CHECKING:
    from capplan_core.simulation.records import JobRunRecord
    from capplan_core.simulation.sampling import ReplicationInputs
    from capplan_core.simulation.scenario import SimScenario

N_BATCHES = 20
N_POINTS = 4  # mean wait, P(wait), wait quantile, late share


def _quantile(x: np.ndarray, q: float) -> float:
    """Linear-interpolation quantile by one partial sort (``np.quantile``'s definition)."""
    n = x.size
    if n == 0:
        return 0.0
    pos = q * (n - 1)
    lo = int(pos)
    hi = min(lo + 1, n - 1)
    part = np.partition(x, (lo, hi))
    return float(part[lo] + (pos - lo) * (part[hi] - part[lo]))


def _points(waits: np.ndarray, q: float, slo_s: float | None) -> np.ndarray:
    if waits.size == 0:
        return np.array([0.0, 0.0, 0.0, 0.0 if slo_s is not None else np.nan])
    late = float((waits > slo_s).mean()) if slo_s is not None else np.nan
    return np.array([waits.mean(), np.count_nonzero(waits) / waits.size, _quantile(waits, q), late])


def class_job_stats(
    scenario: SimScenario, inputs: ReplicationInputs, record: JobRunRecord
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    """One replication per class: (windows failing any class's SLO (n_windows,), class
    failed in some judged window (K,), points (K, 4), each class's kept waits in order)."""
    sc = scenario
    nb = inputs.n_backlog
    arr = inputs.arrival_times_s[nb:]
    waits = record.waits_s[nb:]
    cls = np.asarray(inputs.job_class)[nb:]
    keep = arr >= sc.warmup_s
    arr, waits, cls = arr[keep], waits[keep], cls[keep]
    n_w = sc.n_windows
    judged = sc.window_edges_s[1:] > sc.warmup_s
    win = np.minimum((arr / sc.window_s).astype(np.int64), n_w - 1)
    fail_any = np.zeros(n_w, dtype=bool)
    fail_cls = np.zeros(len(sc.classes), dtype=bool)
    points = np.empty((len(sc.classes), N_POINTS))
    kept = []
    for k, c in enumerate(sc.classes):
        mine = cls == k
        w_k = waits[mine]
        kept.append(w_k)
        points[k] = _points(w_k, c.slo_wait_quantile, c.slo_wait_s)
        if c.slo_wait_s is None:
            continue
        n_jobs = np.bincount(win[mine], minlength=n_w)
        late = np.bincount(win[mine], weights=w_k > c.slo_wait_s, minlength=n_w)
        f = (late > (1.0 - c.slo_wait_quantile) * n_jobs + 1e-9) & judged
        fail_any |= f
        fail_cls[k] = bool(f.any())
    return fail_any, fail_cls, points, kept


def class_batch_units(scenario: SimScenario, kept: list[np.ndarray]) -> np.ndarray | None:
    """(N_BATCHES, K, 4) batch values of one run's per-class waits (None: too few jobs)."""
    if min((w.size for w in kept), default=0) < 2 * N_BATCHES:
        return None
    out = np.empty((N_BATCHES, len(kept), N_POINTS))
    for k, (c, w) in enumerate(zip(scenario.classes, kept, strict=True)):
        for b, part in enumerate(np.array_split(w, N_BATCHES)):
            out[b, k] = _points(part, c.slo_wait_quantile, c.slo_wait_s)
    return out


def _t_ci(units: np.ndarray, point: float, low: float, high: float) -> tuple[float, float] | None:
    units = units[np.isfinite(units)]
    if units.size < 2 or not math.isfinite(point):
        return None
    half = float(sps.t.ppf(0.975, units.size - 1) * units.std(ddof=1) / math.sqrt(units.size))
    return (max(low, point - half), min(high, point + half))


def summarise_classes(
    scenario: SimScenario,
    points: np.ndarray,
    failed: np.ndarray,
    jobs: np.ndarray,
    units: np.ndarray | None,
) -> tuple[ClassSummary, ...]:
    """Per-class summaries from (R, K, 4) replication points, (R, K) failures and (K,) job
    counts; ``units`` (B, K, 4) replaces the replications for the intervals when given."""
    units = points if units is None else units
    out = []
    for k, c in enumerate(scenario.classes):
        p = points[:, k, :].mean(axis=0)
        ci = [
            _t_ci(units[:, k, i], float(p[i]), 0.0, 1.0 if i in (1, 3) else math.inf)
            for i in range(N_POINTS)
        ]
        has_slo = c.slo_wait_s is not None
        out.append(
            ClassSummary(
                name=c.name,
                jobs=int(jobs[k]),
                slo_wait_s=c.slo_wait_s,
                wait_quantile=c.slo_wait_quantile,
                mean_wait_s=float(p[0]),
                mean_wait_s_ci95=ci[0],
                wait_probability=float(p[1]),
                wait_probability_ci95=ci[1],
                wait_quantile_s=float(p[2]),
                wait_quantile_s_ci95=ci[2],
                late_share=float(p[3]) if has_slo else None,
                late_share_ci95=ci[3] if has_slo else None,
                slo_achievement_rate=float(1.0 - failed[:, k].mean()),
            )
        )
    return tuple(out)
