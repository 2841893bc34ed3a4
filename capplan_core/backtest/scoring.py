"""Score a replayed pool window by window with the exact queueing formulas plus the fluid backlog.

For each tick of a window (arrival rate λ and service rate μ of the window, c ready workers,
fluid backlog B averaged over the tick, Allen–Cunneen factor k = (1 + c_s²)/2 with Poisson
arrivals):
- if λ < cμ, a job arriving in the tick first waits for the fluid backlog ahead of it,
  d = B/(cμ), then as in a stationary M/M/c (G/G/c) queue:
  P(W > s) = 1 for s < d, else C(c, λ/μ)·exp(−(cμ − λ)(s − d)/k)  (Erlang C; Gross & Harris
  §2.3; Allen–Cunneen §6.5);
- if λ >= cμ (overload) every job of the tick counts as missing the wait SLO: the stationary
  formulas have no answer and the queue grows without bound.
Jobs arrive uniformly within a window (λ is constant), so the window's wait distribution is
the tick average of these tails. A window meets the SLO when every term the policy sets holds:
tail P(W > wait_s) <= 1 − wait_quantile; mean wait <= mean_wait_s; peak backlog (fluid B plus
the stationary mean queue length Lq) <= max_backlog; mean utilisation λ/(cμ) <= max_utilization.
The drain term only sizes the pool; it is not an outcome and is not scored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from capplan_core.backtest.demand import DemandTrace
from capplan_core.backtest.replay import Replay
from capplan_core.policy import ScalingPolicy
from capplan_core.queueing.erlang import erlang_c

SCORE_QUANTILE = 0.95  # wait_p95_s is always the 95th percentile of job waits


@dataclass(frozen=True)
class TickModel:
    """Vectorised per-tick queue state; all arrays have one entry per tick."""

    lam: np.ndarray
    mu: np.ndarray
    ready: np.ndarray
    backlog_avg: np.ndarray
    backlog_peak: np.ndarray
    k: np.ndarray

    @property
    def stable(self) -> np.ndarray:
        return np.asarray((self.lam == 0) | (self.ready * self.mu > self.lam))

    def erlang(self) -> np.ndarray:
        return np.array(
            [
                _erlang_c(int(c), round(a, 12))
                for c, a in zip(self.ready, self.lam / self.mu, strict=True)
            ]
        )

    def fluid_delay_s(self) -> np.ndarray:
        cap = self.ready * self.mu
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(
                cap > 0,
                self.backlog_avg / np.where(cap > 0, cap, 1.0),
                np.where(self.backlog_avg > 0, np.inf, 0.0),
            )
        return np.asarray(d, dtype=float)

    def tail(self, s: float, cw: np.ndarray, d: np.ndarray) -> np.ndarray:
        """P(W > s) per tick (overloaded ticks: 1)."""
        decay = np.where(self.stable, (self.ready * self.mu - self.lam), 0.0) / np.maximum(
            self.k, 1e-12
        )
        with np.errstate(over="ignore", invalid="ignore"):
            stat = cw * np.exp(-decay * np.maximum(s - d, 0.0))
        out = np.where(s < d, 1.0, stat)
        return np.where(self.stable, out, 1.0)


@lru_cache(maxsize=65536)
def _erlang_c(c: int, a: float) -> float:
    return erlang_c(c, a)


def tick_model(trace: DemandTrace, rep: Replay, window: slice) -> TickModel:
    """Tick states for windows ``window`` (a slice of window indices)."""
    per = rep.ticks_per_window
    j = slice(window.start * per, window.stop * per)
    w_idx = np.arange(window.start, window.stop).repeat(per)
    b0, b1 = rep.backlog_start[j], rep.backlog_end[j]
    return TickModel(
        lam=trace.arrival_rate_per_s[w_idx],
        mu=trace.service_rate_per_s[w_idx],
        ready=rep.ready[j].astype(float),
        backlog_avg=(b0 + b1) / 2.0,
        backlog_peak=np.maximum(b0, b1),
        k=(1.0 + trace.service_scv[w_idx]) / 2.0,
    )


def wait_quantile_s(m: TickModel, q: float, weights: np.ndarray | None = None) -> float:
    """The q-quantile of job waits over the ticks (weighted by arrivals); inf if overloaded."""
    wts = np.ones_like(m.lam) if weights is None else weights
    if wts.sum() <= 0:
        return 0.0
    wts = wts / wts.sum()
    cw, d = m.erlang(), m.fluid_delay_s()

    def exceed(s: float) -> float:
        return float(np.sum(wts * m.tail(s, cw, d)))

    if float(np.sum(wts * ~m.stable)) > 1.0 - q or not np.isfinite(exceed(1e12)):
        return math.inf
    if exceed(0.0) <= 1.0 - q:
        return 0.0
    lo, hi = 0.0, 1.0
    while exceed(hi) > 1.0 - q:
        lo, hi = hi, hi * 2.0
        if hi > 1e9:
            return math.inf
    for _ in range(60):
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if exceed(mid) > 1.0 - q else (lo, mid)
    return hi


@dataclass(frozen=True)
class WindowScore:
    meets_slo: bool
    wait_p95_s: float
    peak_backlog: float
    failed_terms: tuple[str, ...]


def score_window(m: TickModel, policy: ScalingPolicy) -> WindowScore:
    """One window's outcome under the policy's SLO (see the module docstring)."""
    slo = policy.slo
    cw, d = m.erlang(), m.fluid_delay_s()
    stable = m.stable
    failed: list[str] = []
    if slo.wait_seconds is not None and float(np.mean(m.tail(slo.wait_seconds, cw, d))) > (
        1.0 - slo.wait_quantile + 1e-12
    ):
        failed.append("wait_quantile")
    cap = m.ready * m.mu
    with np.errstate(divide="ignore", invalid="ignore"):
        wq = np.where(stable & (m.lam > 0), m.k * cw / np.where(stable, cap - m.lam, 1.0), 0.0)
    lq = m.lam * wq
    if slo.mean_wait_seconds is not None:
        mean_wait = float(np.mean(np.where(stable, d + wq, np.inf)))
        if mean_wait > slo.mean_wait_seconds:
            failed.append("mean_wait")
    peak = float(np.max(m.backlog_peak + np.where(stable, lq, 0.0)))
    if slo.max_backlog is not None and peak > slo.max_backlog:
        failed.append("max_backlog")
    if slo.max_utilization is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            rho = np.where(
                cap > 0, m.lam / np.where(cap > 0, cap, 1.0), np.where(m.lam > 0, np.inf, 0.0)
            )
        if float(np.mean(rho)) > slo.max_utilization + 1e-12:
            failed.append("max_utilization")
    return WindowScore(not failed, wait_quantile_s(m, SCORE_QUANTILE), peak, tuple(failed))


@dataclass(frozen=True)
class StrategyScore:
    """A strategy's scores over the scored windows (see docs/backtest.md)."""

    name: str
    slo_attainment: float  # share of the windows with demand meeting the SLO
    wait_p95_s: float  # 95th percentile of all job waits (inf: >5% overloaded)
    worst_backlog: float  # jobs
    worker_hours: float
    cost: float  # worker_hours x worker_hour price
    violation_cost: float  # missed window-hours x violation_hour price
    scaling_actions: int
    windows_missed: int  # windows with demand that missed the SLO
    windows: list[WindowScore]
    windows_changed: int = 0  # scored windows in which the replica count changed
    days: float = 0.0  # length of the scored period
    windows_with_demand: int = 0  # scored windows with arrivals: what attainment counts

    @property
    def changes_per_window(self) -> float:
        """Share of scored windows in which the strategy changed its replica count."""
        return self.windows_changed / max(1, len(self.windows))

    @property
    def actions_per_day(self) -> float:
        return self.scaling_actions / self.days if self.days > 0 else 0.0


def score_replay(
    trace: DemandTrace, rep: Replay, policy: ScalingPolicy, first_window: int = 0
) -> StrategyScore:
    """Scores of one replayed strategy over windows ``first_window`` onwards."""
    n = len(trace)
    wins = [
        score_window(tick_model(trace, rep, slice(i, i + 1)), policy)
        for i in range(first_window, n)
    ]
    per = rep.ticks_per_window
    all_ticks = tick_model(trace, rep, slice(first_window, n))
    p95 = wait_quantile_s(all_ticks, SCORE_QUANTILE, weights=all_ticks.lam)
    wh = float(rep.commanded[first_window * per :].sum() * rep.tick_s / 3600.0)
    t0 = trace.starts[first_window]
    actions = sum(1 for a in rep.actions if a[0] >= t0)
    changed = {
        int((a[0] - t0).total_seconds() // trace.window_s) for a in rep.actions if a[0] >= t0
    }
    # a window without demand has no job to keep waiting: only windows with demand count
    # (a call centre's closed nights and weekends would otherwise inflate attainment)
    busy = trace.arrival_rate_per_s[first_window:] > 0
    missed = sum(1 for w, b in zip(wins, busy, strict=True) if b and not w.meets_slo)
    n_busy = int(busy.sum())
    return StrategyScore(
        name=rep.name,
        slo_attainment=(n_busy - missed) / max(1, n_busy),
        wait_p95_s=p95,
        worst_backlog=max((w.peak_backlog for w in wins), default=0.0),
        worker_hours=wh,
        cost=wh * policy.cost.worker_hour,
        violation_cost=missed * trace.window_s / 3600.0 * policy.cost.violation_hour,
        scaling_actions=actions,
        windows_missed=missed,
        windows=wins,
        windows_changed=len(changed),
        days=len(wins) * trace.window_s / 86_400.0,
        windows_with_demand=n_busy,
    )
