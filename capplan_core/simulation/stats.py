"""From replications to a ``SimulationSummary``: SLO per window, confidence intervals.

Confidence intervals: a Wilson score interval for the SLO achievement rate (Wilson, JASA 1927;
Agresti & Coull, *Am. Stat.* 1998) and Student t intervals over independent replications for
the wait statistics; with a single replication, over ``N_BATCHES`` batch means of its jobs in
arrival order (Law, *Simulation Modeling and Analysis*, 5th ed., §9.5.3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from capplan_core.simulation.class_stats import summarise_classes
from capplan_core.simulation.class_summary import ClassSummary
from capplan_core.simulation.records import JobRunRecord
from capplan_core.simulation.sampling import ReplicationInputs
from capplan_core.simulation.scenario import SimScenario, SimulationSummary

N_BATCHES = 20
Z95 = 1.959963984540054


@dataclass
class RepStats:
    """Per-replication results: ``(R, W)`` window arrays and ``(R,)`` wait statistics.

    ``units`` holds the values the wait CIs are computed from: one row per replication, or the
    batch means of a single replication (rows: mean wait, wait probability, p95 wait).
    """

    window_fail: np.ndarray
    window_max_backlog: np.ndarray
    window_util: np.ndarray
    mean_wait_s: np.ndarray
    wait_prob: np.ndarray
    p95_wait_s: np.ndarray
    jobs: np.ndarray
    units: np.ndarray | None = None
    class_points: np.ndarray | None = None  # (R, K, 4) per class: see class_stats
    class_fail: np.ndarray | None = None  # (R, K) the class missed its SLO in some window
    class_jobs: np.ndarray | None = None  # (K,) jobs of each class over all replications
    class_units: np.ndarray | None = None  # (B, K, 4) batch values of a single replication


def judged_windows(scenario: SimScenario) -> np.ndarray:
    """Windows the SLO is judged on: those ending after the warm-up."""
    return scenario.window_edges_s[1:] > scenario.warmup_s


def _quantile(x: np.ndarray, q: float) -> float:
    """``np.quantile(x, q)`` (linear interpolation) by one partial sort, without its overhead."""
    n = x.size
    if n == 0:
        return 0.0
    pos = q * (n - 1)
    lo = int(pos)
    hi = min(lo + 1, n - 1)
    part = np.partition(x, (lo, hi))
    return float(part[lo] + (pos - lo) * (part[hi] - part[lo]))


def job_level_stats(
    scenario: SimScenario, inputs: ReplicationInputs, record: JobRunRecord
) -> tuple[np.ndarray, ...]:
    """Reduce one job-level replication: (window_fail, window_max_backlog, window_util,
    [mean_wait, wait_prob, p95_wait], kept waits in arrival order)."""
    sc = scenario
    arr = inputs.arrival_times_s[inputs.n_backlog :]
    waits = record.waits_s[inputs.n_backlog :]
    if sc.warmup_s > 0:
        keep = arr >= sc.warmup_s
        arr, waits = arr[keep], waits[keep]
    n_w = sc.n_windows
    fail = np.zeros(n_w, dtype=bool)
    if sc.slo_wait_s is not None:
        win = np.minimum((arr / sc.window_s).astype(np.int64), n_w - 1)
        n_jobs = np.bincount(win, minlength=n_w)
        late = np.bincount(win, weights=waits > sc.slo_wait_s, minlength=n_w)
        fail |= late > (1.0 - sc.slo_wait_quantile) * n_jobs + 1e-9
    if sc.slo_max_backlog is not None:
        fail |= record.window_max_backlog > sc.slo_max_backlog
    fail &= judged_windows(sc)
    with np.errstate(invalid="ignore", divide="ignore"):
        util = np.where(
            record.window_ready_s > 0,
            np.minimum(record.window_busy_s / record.window_ready_s, 1.0),
            np.nan,
        )
    point = np.array(
        [
            waits.mean() if waits.size else 0.0,
            np.count_nonzero(waits) / waits.size if waits.size else 0.0,
            _quantile(waits, 0.95),
        ]
    )
    return fail, record.window_max_backlog, util, point, waits


def batch_units(waits: np.ndarray) -> np.ndarray | None:
    """(N_BATCHES, 3) batch mean wait, wait probability and p95 of one run's waits."""
    if waits.size < 2 * N_BATCHES:
        return None
    return np.array(
        [[b.mean(), (b > 0).mean(), _quantile(b, 0.95)] for b in np.array_split(waits, N_BATCHES)]
    )


def wilson_ci(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def t_ci(units: np.ndarray, point: float) -> tuple[float, float] | None:
    """95% t interval around ``point`` from the spread of independent ``units``; None with
    fewer than two units (no spread to measure, and a zero-wide interval would claim one)."""
    k = units.size
    if k < 2:
        return None
    half = float(sps.t.ppf(0.975, k - 1) * units.std(ddof=1) / math.sqrt(k))
    return (point - half, point + half)


def summarise(rs: RepStats, scenario: SimScenario, engine: str) -> SimulationSummary:
    """Combine per-replication results into the summary (see ``SimulationSummary``)."""
    n_rep = rs.window_fail.shape[0]
    ok = ~rs.window_fail.any(axis=1)
    met = int(ok.sum())
    judged = judged_windows(scenario)
    util_w = _nanmean_cols(rs.window_util)
    judged_util = util_w[judged & np.isfinite(util_w)]
    util_range = (
        (float(judged_util.min()), float(judged_util.max())) if judged_util.size else (0.0, 0.0)
    )
    points = np.array([rs.mean_wait_s.mean(), rs.wait_prob.mean(), rs.p95_wait_s.mean()])
    units = (
        rs.units
        if rs.units is not None
        else np.column_stack((rs.mean_wait_s, rs.wait_prob, rs.p95_wait_s))
    )
    approximate = engine == "fluid"
    cis = [None if approximate else t_ci(units[:, i], float(points[i])) for i in range(3)]
    max_backlog = rs.window_max_backlog[:, judged].max(axis=1) if judged.any() else np.zeros(1)
    classes: tuple[ClassSummary, ...] = ()
    if rs.class_points is not None and rs.class_fail is not None and rs.class_jobs is not None:
        classes = summarise_classes(
            scenario, rs.class_points, rs.class_fail, rs.class_jobs, rs.class_units
        )
    return SimulationSummary(
        slo_achievement_rate=met / n_rep,
        achievement_ci95=wilson_ci(met, n_rep),
        max_backlog=float(max_backlog.mean()),
        p95_wait_s=float(points[2]),
        p95_wait_s_ci95=_clip(cis[2], 0.0, math.inf),
        mean_wait_s=float(points[0]),
        mean_wait_s_ci95=_clip(cis[0], 0.0, math.inf),
        wait_probability=float(points[1]),
        wait_probability_ci95=_clip(cis[1], 0.0, 1.0),
        utilization_range=util_range,
        window_failure_rate=rs.window_fail.mean(axis=0),
        window_utilization=util_w,
        window_max_backlog=rs.window_max_backlog.mean(axis=0),
        jobs=int(rs.jobs.sum()),
        engine=engine,
        replications=n_rep,
        approximate=approximate,
        classes=classes,
    )


def _clip(ci: tuple[float, float] | None, low: float, high: float) -> tuple[float, float] | None:
    return None if ci is None else (max(low, ci[0]), min(high, ci[1]))


def _nanmean_cols(x: np.ndarray) -> np.ndarray:
    finite = np.isfinite(x)
    counts = finite.sum(axis=0)
    sums = np.where(finite, x, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
