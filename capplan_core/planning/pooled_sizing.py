"""Pooled attainment: a risk budget across the horizon's windows instead of a quantile each.

``slo.target_attainment`` asks that a share of the planning windows meet the SLO. Sizing every
window to that quantile of its forecast demand (``slo.attainment_mode: per_window``, the
default) meets it, but with integer workers it over-provisions: rounding up gives many windows
a probability of meeting the SLO far above the target. ``attainment_mode: pooled`` chooses the
counts c_i that (greedily) minimise the worker-hours Σ c_i · window_s subject to

    mean_i P_i(c_i) >= target_attainment,   P_i(c_i) >= window_floor(target) for every i,

with P_i(c) = F_i(λ_max(c)): λ_max(c) is the largest arrival rate c workers serve within every
SLO term (exact Erlang C / Allen–Cunneen, ``queueing.sizing.capacity_at_slo``) and F_i the
forecast's predictive distribution of window i's demand (:class:`DemandDistribution`, its
quantiles interpolated). The floor (a window's miss risk at most ``FLOOR_RISK_FACTOR`` times
the budget: 0.90 at a 0.99 target) keeps any window from being left knowingly hopeless.

Algorithm (marginal allocation, the discrete Lagrangian): start every window at the least
count meeting its floor, then repeatedly add one worker to the window where it buys the most
probability, until the mean reaches the target or no worker buys anything. Every window has
the same length, so "most probability per worker-hour" is "most probability per worker".
For the upper tail of a unimodal demand distribution P_i is concave in c and the greedy is
optimal; elsewhere it is a good heuristic (the floor keeps it in the upper tail).

The probability above the distribution's highest quantile is taken as that quantile's level
(never 1): a conservative reading of the tail, so no window is credited with certainty.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from capplan_core.forecast.result import ForecastResult
from capplan_core.policy import ScalingPolicy
from capplan_core.queueing.search import least_passing
from capplan_core.queueing.sizing import SloTerms, capacity_at_slo

FLOOR_RISK_FACTOR = 10.0  # a window may carry at most 10x the average miss risk


def window_floor(target_attainment: float) -> float:
    """The least P(met) any window may be planned at: 1 − FLOOR_RISK_FACTOR·(1 − target),
    never below 0.5 (0.90 at a target of 0.99, 0.5 at 0.95 and below)."""
    return max(0.5, 1.0 - FLOOR_RISK_FACTOR * (1.0 - float(target_attainment)))


@dataclass(frozen=True)
class DemandDistribution:
    """The predictive distribution of demand (jobs/s) per window, as quantiles.

    ``levels``: k increasing probabilities in (0, 1); ``values_per_s``: (k, n) demand at those
    levels for each of the n windows, non-decreasing down each column.
    """

    levels: np.ndarray
    values_per_s: np.ndarray
    # windows whose calibration is uncertain (ForecastResult.uncertain): the budget takes no
    # extra risk there, each is planned at least at the target itself; None: none
    uncertain: np.ndarray | None = None

    def __post_init__(self) -> None:
        lv = np.asarray(self.levels, dtype=float).ravel()
        vals = np.asarray(self.values_per_s, dtype=float)
        if vals.ndim != 2 or vals.shape[0] != lv.size or lv.size < 2:
            raise ValueError(
                f"values_per_s must have shape (len(levels), windows) with at "
                f"least 2 levels, got {vals.shape} for {lv.size} levels"
            )
        if not (np.all(lv > 0) and np.all(lv < 1) and np.all(np.diff(lv) > 0)):
            raise ValueError("levels must be strictly increasing and inside (0, 1)")
        if not np.all(np.isfinite(vals)) or vals.min() < 0:
            raise ValueError("values_per_s must be finite and >= 0")
        # a monotone column (np.maximum.accumulate) so interpolation is a proper CDF
        object.__setattr__(self, "levels", lv)
        object.__setattr__(self, "values_per_s", np.maximum.accumulate(vals, axis=0))

    @property
    def windows(self) -> int:
        return int(self.values_per_s.shape[1])

    @property
    def busy(self) -> np.ndarray:
        """Windows with any demand at some level: the ones an attainment target counts (a
        closed window is met for certain and must not lower the others' share)."""
        return np.asarray(self.values_per_s[-1] > 0.0, dtype=bool)

    def cdf(self, window: int, rate_per_s: float) -> float:
        """P(demand of ``window`` <= ``rate_per_s``): 0 below the lowest quantile, the highest
        level above the highest one, linear in between (flat stretches: the highest level);
        1 for a window with no demand at any level (closed hours)."""
        col = self.values_per_s[:, window]
        if col[-1] <= 0.0 and rate_per_s >= 0.0:
            return 1.0  # no demand at any level (a closed window): certain to be met
        if rate_per_s < col[0]:
            return 0.0
        k = int(np.searchsorted(col, rate_per_s, side="right")) - 1  # col[k] <= rate
        if k >= col.size - 1:
            return float(self.levels[-1])
        lo, hi = col[k], col[k + 1]
        if hi <= lo:
            return float(self.levels[k])
        share = (rate_per_s - lo) / (hi - lo)
        return float(self.levels[k] + share * (self.levels[k + 1] - self.levels[k]))

    def quantile(self, window: int, q: float) -> float:
        """The demand of ``window`` at level ``q`` (clamped to the known levels)."""
        return float(np.interp(q, self.levels, self.values_per_s[:, window]))


def distribution_from_forecast(forecast: ForecastResult) -> DemandDistribution:
    """The forecast's own predictive distribution (mean + scale · Z, Z at its plotting
    positions i/(n+1)), so P(met) agrees with ``forecast.quantile``."""
    z = np.asarray(forecast.z_sorted, dtype=np.float64)
    mean = np.asarray(forecast.mean, dtype=np.float64)
    scale = np.asarray(forecast.scale, dtype=np.float64)
    if scale.size != mean.size:
        scale = np.zeros_like(mean)
    levels = np.arange(1, z.size + 1) / (z.size + 1)
    values = np.maximum(mean[None, :] + scale[None, :] * z[:, None], 0.0)
    unsure = forecast.uncertain
    return DemandDistribution(
        levels=levels,
        values_per_s=values,
        uncertain=None
        if unsure is None or len(unsure) != mean.size
        else np.asarray(unsure, dtype=bool),
    )


def distribution_for(policy: ScalingPolicy, forecast: ForecastResult) -> DemandDistribution | None:
    """What a plan passes as ``PlanInput.demand_distribution``: the forecast's distribution
    when the policy pools its attainment, else None (per-window sizing needs none)."""
    from capplan_core.planning.defaults import attainment_mode

    if attainment_mode(policy) != "pooled":
        return None
    return distribution_from_forecast(forecast)


@dataclass(frozen=True)
class PooledAllocation:
    """Workers per window and the probability each then meets the SLO."""

    workers: list[int]
    met_probability: list[float]
    target_attainment: float
    window_floor: float

    busy: list[bool] | None = None  # windows with demand (None: all)

    @property
    def expected_attainment(self) -> float:
        """The mean P(met) over the windows with demand."""
        ps = [
            p
            for p, b in zip(
                self.met_probability, self.busy or [True] * len(self.met_probability), strict=True
            )
            if b
        ]
        return float(np.mean(ps)) if ps else 1.0


def capacity_fn(mean_service_s: float, service_scv: float) -> Callable[[int, SloTerms], float]:
    """λ_max(c, terms), cached: the largest arrival rate c workers serve within every term."""
    cache: dict[tuple[int, SloTerms], float] = {}

    def capacity(c: int, terms: SloTerms) -> float:
        key = (c, terms)
        if key not in cache:
            cache[key] = capacity_at_slo(c, mean_service_s, terms, service_scv)
        return cache[key]

    return capacity


def pooled_allocation(
    dist: DemandDistribution,
    terms_per_window: Sequence[SloTerms],
    *,
    mean_service_s: float,
    service_scv: float,
    target_attainment: float,
    min_workers: int,
    max_workers: int,
    capacity: Callable[[int, SloTerms], float] | None = None,
    floor: float | None = None,
    uncertain_floor: float | None = None,
) -> PooledAllocation:
    """The cheapest counts (greedy marginal allocation) whose mean P(met) reaches
    ``target_attainment`` with every window at least at :func:`window_floor` (see the module
    docstring). Counts stay within [min_workers, max_workers]; a window that cannot reach its
    floor within ``max_workers`` gets ``max_workers``. ``floor`` None: window_floor(target).
    A window the distribution marks ``uncertain`` starts at ``uncertain_floor`` (None: the
    target) instead: less of the budget is spent where calibration is uncertain."""
    n = dist.windows
    if len(terms_per_window) != n:
        raise ValueError(f"terms_per_window has {len(terms_per_window)} entries for {n} windows")
    if not 0.0 < target_attainment < 1.0:
        raise ValueError(f"target_attainment must be in (0, 1), got {target_attainment!r}")
    cap = capacity or capacity_fn(mean_service_s, service_scv)
    floor = window_floor(target_attainment) if floor is None else float(floor)
    top = min(target_attainment, float(dist.levels[-1]))

    def p(i: int, c: int) -> float:
        return dist.cdf(i, cap(c, terms_per_window[i]))

    workers: list[int] = []
    probs: list[float] = []
    unsure = dist.uncertain if dist.uncertain is not None else np.zeros(n, dtype=bool)
    for i in range(n):
        # where calibration is uncertain the window takes no more risk than the target
        sure_floor = target_attainment if uncertain_floor is None else uncertain_floor
        least = min(max(floor, sure_floor) if unsure[i] else floor, top) - 1e-12

        def meets_floor(c: int, i: int = i, least: float = least) -> bool:
            return p(i, c) >= least

        c = _least_meeting(meets_floor, min_workers, max_workers)
        workers.append(c)
        probs.append(p(i, c))
    # the target is a share of the windows with demand: closed ones (P = 1) do not count
    busy = dist.busy
    need = target_attainment * int(busy.sum())
    total = sum(pr for pr, b in zip(probs, busy, strict=True) if b)
    heap: list[tuple[float, int]] = []
    for i in range(n):
        if busy[i]:
            _push(heap, i, workers[i], probs[i], p, max_workers)
    while total < need - 1e-12 and heap:
        neg_gain, i = heapq.heappop(heap)
        c = workers[i] + 1
        new_p = p(i, c)
        total += new_p - probs[i]
        workers[i], probs[i] = c, new_p
        _push(heap, i, c, new_p, p, max_workers)
    return PooledAllocation(
        workers, probs, float(target_attainment), floor, [bool(b) for b in busy]
    )


def _push(
    heap: list[tuple[float, int]],
    i: int,
    c: int,
    p_now: float,
    p: Callable[[int, int], float],
    max_workers: int,
) -> None:
    if c >= max_workers:
        return
    gain = p(i, c + 1) - p_now
    if gain > 1e-12:
        heapq.heappush(heap, (-gain, i))
    else:
        # a flat stretch (c + 1 buys nothing, e.g. below the distribution's support or above
        # its top): look one further worker ahead before giving the window up
        if c + 2 <= max_workers and p(i, c + 2) - p_now > 1e-12:
            heapq.heappush(heap, (-(p(i, c + 2) - p_now) / 2.0, i))


def _least_meeting(ok: Callable[[int], bool], lo: int, hi: int) -> int:
    """The least c in [lo, hi] with ok(c) (ok monotone), else hi. Gallop then bisect."""
    if ok(lo) or lo >= hi:
        return lo
    least = least_passing(ok, failing=lo, start=lo + 1, limit=hi)
    return hi if least is None else least


def expected_attainment(
    dist: DemandDistribution,
    workers: Sequence[int],
    terms_per_window: Sequence[SloTerms],
    *,
    mean_service_s: float,
    service_scv: float,
) -> float:
    """mean_i P_i(workers_i): the expected share of windows meeting the SLO."""
    cap = capacity_fn(mean_service_s, service_scv)
    busy = dist.busy
    ps = [dist.cdf(i, cap(int(c), terms_per_window[i])) for i, c in enumerate(workers) if busy[i]]
    return float(np.mean(ps)) if ps else 1.0


__all__ = [
    "DemandDistribution",
    "PooledAllocation",
    "capacity_fn",
    "distribution_for",
    "distribution_from_forecast",
    "expected_attainment",
    "pooled_allocation",
    "window_floor",
]
