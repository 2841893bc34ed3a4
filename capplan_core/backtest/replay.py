"""Play one scaling strategy against the demand that really came (fluid model, fixed ticks).

Time advances in ticks of ``tick_s`` seconds (15 s by default, a divisor of the window).
At each tick start, pods whose startup has finished become ready, the strategy sees what a
metrics system would show (the pool, the fluid backlog, the arrival rate measured over the
last minute) and may command a new replica count. A scale-up adds pods that become ready
``startup_s`` later; a scale-down removes not-yet-ready pods first, then ready ones, at once.

Backlog is a fluid (Newell, *Applications of Queueing Theory*, ch. 2; the "fluid
approximation" of a time-varying queue): over a tick with arrival rate λ, ready workers c and
service rate μ, the backlog changes by (λ − cμ)·dt and never drops below zero — arrivals beyond
capacity accumulate, and the backlog drains at the spare capacity cμ − λ.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from capplan_core.backtest.demand import DemandTrace

DEFAULT_TICK_S = 15.0
RATE_LAG_S = 60.0  # a rate metric (e.g. PromQL rate over 1 m) shows the last minute


@dataclass(frozen=True)
class Observation:
    """What a strategy may see at a tick: the pool and the metrics, nothing from the future."""

    t: pd.Timestamp
    arrival_rate_per_s: float  # measured over the last RATE_LAG_S seconds
    service_rate_per_s: float
    backlog: float  # jobs waiting now
    commanded: int  # replicas last commanded
    ready: int  # replicas serving now
    last_action_at: pd.Timestamp | None


class Controller(Protocol):
    """A scaling strategy. ``command`` returns a replica count to set, or None to hold."""

    name: str

    @property
    def startup_s(self) -> float: ...

    def initial_workers(self) -> int: ...

    def command(self, obs: Observation) -> int | None: ...


@dataclass
class Replay:
    """Per-tick record of one strategy's pool and backlog."""

    name: str
    tick_s: float
    ticks_per_window: int
    commanded: np.ndarray  # replicas commanded (billed) during each tick
    ready: np.ndarray  # replicas serving during each tick
    backlog_start: np.ndarray  # fluid backlog at each tick start (jobs)
    backlog_end: np.ndarray
    actions: list[tuple[pd.Timestamp, int, int]] = field(default_factory=list)


@dataclass
class _Pool:
    commanded: int
    ready: int
    pending: list[list[float]] = field(default_factory=list)  # [ready_at_s, pods]

    def promote(self, t_s: float) -> None:
        due = [p for p in self.pending if p[0] <= t_s + 1e-9]
        self.ready += int(sum(p[1] for p in due))
        self.pending = [p for p in self.pending if p[0] > t_s + 1e-9]

    def set(self, target: int, t_s: float, startup_s: float) -> None:
        total = self.ready + int(sum(p[1] for p in self.pending))
        if target > total:
            self.pending.append([t_s + startup_s, float(target - total)])
        excess = total - target
        while excess > 0 and self.pending:  # newest not-ready pods go first
            take = min(excess, int(self.pending[-1][1]))
            self.pending[-1][1] -= take
            excess -= take
            if self.pending[-1][1] <= 0:
                self.pending.pop()
        self.ready -= max(0, excess)
        self.commanded = target
        self.promote(t_s)


def tick_length_s(window_s: float, wanted_s: float = DEFAULT_TICK_S) -> float:
    """The largest tick <= ``wanted_s`` that divides the window into whole ticks."""
    n = max(1, math.ceil(window_s / wanted_s - 1e-9))
    return window_s / n


def replay(
    trace: DemandTrace,
    controller: Controller,
    *,
    tick_s: float = DEFAULT_TICK_S,
    on_window: Callable[[int, int], None] | None = None,
) -> Replay:
    """Run ``controller`` over ``trace`` tick by tick; see the module docstring.

    ``on_window(done, total)`` is called after each window (progress reporting)."""
    dt = tick_length_s(trace.window_s, tick_s)
    per = int(round(trace.window_s / dt))
    n = len(trace) * per
    start = trace.starts[0]
    first = controller.initial_workers()
    pool = _Pool(commanded=first, ready=first)
    out = Replay(
        controller.name,
        dt,
        per,
        np.zeros(n, dtype=int),
        np.zeros(n, dtype=int),
        np.zeros(n),
        np.zeros(n),
    )
    backlog = float(trace.initial_backlog)
    lam_all, mu_all = trace.arrival_rate_per_s, trace.service_rate_per_s
    last_action: pd.Timestamp | None = None
    for j in range(n):
        t_s = j * dt
        w = j // per
        pool.promote(t_s)
        seen = int(math.floor((t_s - RATE_LAG_S) / trace.window_s))
        seen_rate = trace.prior_arrival_rate_per_s if seen < 0 else float(lam_all[seen])
        t = start + pd.Timedelta(seconds=t_s)
        obs = Observation(
            t,
            seen_rate,
            float(mu_all[max(seen, 0)]),
            backlog,
            pool.commanded,
            pool.ready,
            last_action,
        )
        target = controller.command(obs)
        if target is not None and int(target) != pool.commanded:
            out.actions.append((t, pool.commanded, int(target)))
            pool.set(int(target), t_s, controller.startup_s)
            last_action = t
        lam, mu = float(lam_all[w]), float(mu_all[w])
        out.commanded[j], out.ready[j], out.backlog_start[j] = pool.commanded, pool.ready, backlog
        backlog = max(0.0, backlog + (lam - pool.ready * mu) * dt)
        out.backlog_end[j] = backlog
        if on_window is not None and (j + 1) % per == 0:
            on_window((j + 1) // per, len(trace))
    return out
