"""Score a shared pool's replay: each queue against its own SLO, window by window (issue 23;
the replay is :mod:`.shared`).

Scoring, per queue and window, with the replayed ready workers tick by tick:

- each queue's fluid backlog: over a tick the pool's capacity (ready × tick, worker-seconds)
  serves the queues' waiting and arriving work in the discipline's order — under ``strict``
  the first queue first; under ``round_robin``/``weighted`` in proportion to each queue's
  work (a fluid share: no queue is starved while another has work);
- a job of queue k waits first for the work ahead of it (the backlog of queues 1..k under
  ``strict``, of every queue otherwise) at the pool's rate, d_k = work ahead / ready, then
  as in the stationary pool: P(W_k > s) = 1 for s < d_k, else the class law's tail at
  s − d_k (``queueing.pool_models.class_laws``: Cobham/Davis, exact for strict M/M/c with
  one service rate, else the approximation it names);
- the window meets queue k's SLO when the tick average of P(W_k > wait_s) is at most
  1 − wait_quantile, and its mean wait (where the SLO sets one) holds. A queue without
  demand in a window is not judged there; the pool meets a window when every queue with
  demand does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from capplan_core.backtest.demand import DemandTrace
from capplan_core.backtest.replay import Replay
from capplan_core.planning.shared_plan import queue_weights
from capplan_core.policy import ScalingPolicy
from capplan_core.queueing.pool_models import ClassLaw, ClassLoad, class_laws


@dataclass(frozen=True)
class QueueScore:
    """One queue's outcome under one strategy over the scored windows."""

    queue: str
    slo_attainment: float  # share of this queue's windows with demand that met its SLO
    windows_missed: int
    windows_with_demand: int
    met: np.ndarray  # per scored window (True where the queue had no demand)


@dataclass(frozen=True)
class PoolScore:
    """One strategy on the pool: its cost and each queue's attainment."""

    name: str
    slo_attainment: float  # windows in which every queue with demand met its SLO
    windows_missed: int
    windows_with_demand: int
    worker_hours: float
    cost: float
    scaling_actions: int
    windows_changed: int
    queues: dict[str, QueueScore]
    days: float

    @property
    def changes_per_window(self) -> float:
        return self.windows_changed / max(1, len(next(iter(self.queues.values())).met))


def class_backlogs(
    traces: Sequence[DemandTrace], ready: np.ndarray, tick_s: float, per: int, discipline: str
) -> np.ndarray:
    """Each queue's fluid backlog (jobs) at every tick start, shape (queues, ticks): the
    ready workers' capacity serves the queues' work in the discipline's order (see the
    module docstring); the queues' backlogs at the start are zero."""
    k, n = len(traces), len(ready)
    out = np.zeros((k, n))
    backlog = np.zeros(k)
    for j in range(n):
        w = j // per
        out[:, j] = backlog
        lam = np.array([t.arrival_rate_per_s[w] for t in traces])
        s = np.array([1.0 / t.service_rate_per_s[w] for t in traces])
        need = (backlog + lam * tick_s) * s  # worker-seconds of work waiting or arriving
        cap = float(ready[j]) * tick_s
        if discipline == "strict":
            served = np.zeros(k)
            for i in range(k):
                served[i] = min(need[i], cap)
                cap -= served[i]
        else:
            total = float(need.sum())
            served = need if total <= cap else need * (cap / total)
        backlog = np.maximum(0.0, (need - served) / s)
    return out


@lru_cache(maxsize=65_536)
def _laws(
    loads: tuple[tuple[float, float, float, float], ...], workers: int, discipline: str
) -> tuple[ClassLaw, ...]:
    return tuple(class_laws([ClassLoad(*c) for c in loads], workers, discipline))


@lru_cache(maxsize=262_144)
def _tail(law: ClassLaw, t_s: float) -> float:
    return law.tail(t_s)


def score_pool(
    traces: Sequence[DemandTrace], rep: Replay, policy: ScalingPolicy, first_window: int = 0
) -> PoolScore:
    """Each queue's SLO verdict per window and the pool's cost (module docstring)."""
    assert policy.shared is not None
    discipline = policy.shared.discipline
    weights = queue_weights(policy)
    per, dt = rep.ticks_per_window, rep.tick_s
    backlogs = class_backlogs(traces, rep.ready, dt, per, discipline)
    n = len(traces[0])
    met = np.ones((len(traces), n - first_window), dtype=bool)
    busy = np.zeros_like(met)
    for w in range(first_window, n):
        loads = tuple(
            (
                float(t.arrival_rate_per_s[w]),
                1.0 / float(t.service_rate_per_s[w]),
                float(t.service_scv[w]),
                weights[t.queue],
            )
            for t in traces
        )
        tails = _window_tails(traces, loads, rep.ready, backlogs, w, per, discipline, policy)
        for k, (ok, has_demand) in enumerate(tails):
            met[k, w - first_window] = ok
            busy[k, w - first_window] = has_demand
    queues = {}
    for k, t in enumerate(traces):
        n_busy = int(busy[k].sum())
        missed = int((busy[k] & ~met[k]).sum())
        queues[t.queue] = QueueScore(
            t.queue, _attained(n_busy, missed), missed, n_busy, met[k] | ~busy[k]
        )
    any_busy = busy.any(axis=0)
    pool_met = (met | ~busy).all(axis=0)
    n_busy = int(any_busy.sum())
    missed = int((any_busy & ~pool_met).sum())
    wh = float(rep.commanded[first_window * per :].sum() * dt / 3600.0)
    t0 = traces[0].starts[first_window]
    window_s = traces[0].window_s
    changed = {int((a[0] - t0).total_seconds() // window_s) for a in rep.actions if a[0] >= t0}
    return PoolScore(
        name=rep.name,
        slo_attainment=_attained(n_busy, missed),
        windows_missed=missed,
        windows_with_demand=n_busy,
        worker_hours=wh,
        cost=wh * policy.cost.worker_hour,
        scaling_actions=sum(1 for a in rep.actions if a[0] >= t0),
        windows_changed=len(changed),
        queues=queues,
        days=(n - first_window) * window_s / 86_400.0,
    )


def _attained(with_demand: int, missed: int) -> float:
    """The share of windows with demand that met the SLO (1: no window had demand)."""
    return 1.0 if with_demand == 0 else (with_demand - missed) / with_demand


def _window_tails(
    traces: Sequence[DemandTrace],
    loads: tuple[tuple[float, float, float, float], ...],
    ready: np.ndarray,
    backlogs: np.ndarray,
    w: int,
    per: int,
    discipline: str,
    policy: ScalingPolicy,
) -> list[tuple[bool, bool]]:
    """(met, had demand) per queue in window ``w``."""
    ticks = range(w * per, (w + 1) * per)
    out = []
    for k, t in enumerate(traces):
        slo = policy.slo_of(t.queue)
        if loads[k][0] <= 0:
            out.append((True, False))
            continue
        tail_sum, mean_sum = 0.0, 0.0
        for j in ticks:
            c = int(ready[j])
            law = _laws(loads, c, discipline)[k] if c > 0 else None
            ahead = range(k + 1) if discipline == "strict" else range(len(traces))
            work = sum(backlogs[i, j] * loads[i][1] for i in ahead)
            d = math.inf if c == 0 else work / c
            if law is None or not law.stable or not math.isfinite(d):
                tail_sum, mean_sum = tail_sum + 1.0, math.inf
                continue
            s = slo.wait_seconds
            if s is not None:
                tail_sum += 1.0 if s < d else _tail(law, round(s - d, 6))
            mean_sum += d + law.mean_wait_s
        ok = True
        if slo.wait_seconds is not None:
            ok = tail_sum / per <= 1.0 - slo.wait_quantile + 1e-12
        if slo.mean_wait_seconds is not None:
            ok = ok and mean_sum / per <= slo.mean_wait_seconds
        out.append((ok, True))
    return out
