"""Per-class wait laws of a shared pool: exact where theory is exact, named approximations
otherwise.

Every class's wait gets the same form, Davis's law of ``priority``: P(W > t) = C·G(t), G the
law of a geometric number of busy periods, fixed by four numbers (``ClassLaw``): C = P(wait),
the completion rate ν while every worker is busy, and the loads σ_above (work served before
the class) and σ_upto = σ_above + ρ_k. Mean C / (ν·(1 − σ_above)·(1 − σ_upto)).

Models (``model`` names them; ``exact`` is True only for the first):
- ``exact: M/M/c non-preemptive priority``: strict order, one exponential service time for
  every class, Poisson arrivals. Cobham's means and Davis's law (``priority``).
- ``approx: Buzen-Bondi scaling with Allen-Cunneen``: strict order, but unequal service means,
  service SCVs other than 1, or non-Poisson arrivals. Buzen & Bondi scale the M/G/1 priority
  waits by the ratio of the M/G/c to the M/G/1 FCFS waits (J. P. Buzen and A. B. Bondi, "The
  response times of priority classes under preemptive resume in M/G/m queues", Operations
  Research 31(3), 1983, 456–465), which gives W_k = W_FCFS·(1 − ρ)/((1 − σ_{k−1})(1 − σ_k))
  with loads ρ_i = λ_i·E[S_i]/c; W_FCFS is Allen–Cunneen's G/G/c wait for the mixed service
  time (``erlang``), C is Erlang C on the total load a = Σ λ_i·E[S_i]. Here that is Davis's
  law with ν = c / (E[S̄]·(c_a² + c_s²)/2): the exact law when every class is the same M/M/c.
- ``approx: round-robin polling fixed point``, ``approx: weighted polling fixed point``
  (capplan's heuristic; its error against simulation is measured in docs/shared-pools.md): while
  every worker is busy and class j has work waiting, it gets the share s_j = ω_j / (ω_j +
  Σ_{i≠j} ω_i·p_i) of the pool's work, where ω_i = w_i·E[S_i] (a turn serves one job; w_i = 1
  for round robin) and p_i = min(1, ρ_i/s_i) is the chance class i has work waiting (a damped
  fixed-point iteration). Round robin uses s_j as it is (one cycle of turns per class-j job)
  unless that is below ρ_j (unstable at a total load under 1, which no work-conserving order
  does); the weighted random pick always keeps the floor s_j >= 1 − Σ_{i≠j} ρ_i (the others
  cannot take more than the work they bring). Each class then waits as an M/M/1 queue served at
  its share, W_j = C/(ν·(s_j − ρ_j)), except that the classes closest to their share (where that
  estimate is least reliable) absorb what Kleinrock's conservation law requires, Σ ρ_j·W_j =
  ρ·W_FCFS for work-conserving non-preemptive disciplines (L. Kleinrock, "A conservation law for
  a wide class of queueing disciplines", Naval Res. Logistics Quarterly 12, 1965, 181–192): W_j
  is scaled by 1 − u_j + u_j·k with u_j = (min_i (s_i − ρ_i) / (s_j − ρ_j))², k solving the law.
  Each class gets the Davis law of a priority class with the work σ_above = h_j ahead of it that
  reproduces its mean, h_j clipped to [0, ρ − ρ_j]: strict orders are the extreme points of what
  such disciplines achieve (A. Federgruen and H. Groenevelt, "M/G/c queueing systems with
  multiple customer classes", Management Science 34(9), 1988, 1121–1138), so every class stays
  between its highest- and lowest-priority waits. A pool whose total load reaches 1 is unstable
  for every class here (conservative: a class under its fair share would stay stable).
  One class under any discipline is FCFS: Erlang C (exact) or Allen–Cunneen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import capplan_core.queueing.erlang as erlang
from capplan_core.queueing.priority import conditional_tail, quantile_from_law

EXACT_MODEL = "exact: M/M/c non-preemptive priority (Cobham 1954; Davis 1966)"
EXACT_FCFS_MODEL = "exact: M/M/c (Erlang C)"
BONDI_BUZEN_MODEL = "approx: Buzen-Bondi scaling with Allen-Cunneen"
ALLEN_CUNNEEN_MODEL = "approx: G/G/c Allen-Cunneen"
POLLING_MODELS = {
    "round_robin": "approx: round-robin polling fixed point",
    "weighted": "approx: weighted polling fixed point",
}
FIXED_POINT_ROUNDS = 200
RESIDUAL_POWER = 2.0  # how sharply the conservation correction goes to the class at its share


@dataclass(frozen=True)
class ClassLoad:
    """One class as the models see it: arrivals (jobs/s), mean service (s), service SCV and
    weight (``weighted`` discipline only)."""

    arrival_rate_per_s: float
    mean_service_s: float
    service_scv: float = 1.0
    weight: float = 1.0


@dataclass(frozen=True)
class ClassLaw:
    """P(W > t) = ``c_wait``·G(t), G Davis's conditional law (``priority.conditional_tail``)."""

    c_wait: float
    nu_per_s: float
    sigma_above: float
    sigma_upto: float

    @property
    def stable(self) -> bool:
        return self.sigma_upto < 1.0

    @property
    def mean_wait_s(self) -> float:
        if not self.stable:
            return math.inf
        if self.c_wait == 0.0:
            return 0.0
        return self.c_wait / (self.nu_per_s * (1.0 - self.sigma_above) * (1.0 - self.sigma_upto))

    @property
    def wait_probability(self) -> float:
        return self.c_wait if self.stable else 1.0

    def tail(self, t_s: float) -> float:
        """P(W > t_s)."""
        if not self.stable:
            return 1.0
        if self.c_wait == 0.0 or t_s <= 0.0:
            return self.c_wait
        return self.c_wait * conditional_tail(self.nu_per_s, self.sigma_above, self.sigma_upto, t_s)

    def quantile_s(self, q: float) -> float:
        """The least t with P(W <= t) >= q (s)."""
        return quantile_from_law(self.c_wait, self.nu_per_s, self.sigma_above, self.sigma_upto, q)


def model_name(loads: Sequence[ClassLoad], discipline: str, arrival_scv: float) -> str:
    """Which model ``class_laws`` uses, for a person: exact, or the approximation's name."""
    one_law = (
        len({c.mean_service_s for c in loads}) == 1
        and all(c.service_scv == 1.0 for c in loads)
        and arrival_scv == 1.0
    )
    if len(loads) == 1:
        return EXACT_FCFS_MODEL if one_law else ALLEN_CUNNEEN_MODEL
    if discipline == "strict":
        return EXACT_MODEL if one_law else BONDI_BUZEN_MODEL
    return POLLING_MODELS[discipline]


def class_laws(
    loads: Sequence[ClassLoad], workers: int, discipline: str = "strict", arrival_scv: float = 1.0
) -> list[ClassLaw]:
    """Each class's wait law on ``workers`` workers (classes in priority order for strict)."""
    lam = sum(c.arrival_rate_per_s for c in loads)
    work = sum(c.arrival_rate_per_s * c.mean_service_s for c in loads)  # offered load, Erlangs
    c_wait = erlang.erlang_c(workers, work)
    if workers == 0 or lam == 0.0:
        return [ClassLaw(c_wait, 1.0, 0.0, 0.0 if lam == 0 else math.inf) for _ in loads]
    rho = [c.arrival_rate_per_s * c.mean_service_s / workers for c in loads]
    mean_s = work / lam
    second = (
        sum(c.arrival_rate_per_s * c.mean_service_s**2 * (1.0 + c.service_scv) for c in loads) / lam
    )
    factor = (arrival_scv + second / mean_s**2 - 1.0) / 2.0  # Allen–Cunneen (c_a² + c_s²)/2
    nu = workers / (mean_s * factor) if factor > 0 else math.inf
    if discipline == "strict" or len(loads) == 1:
        out, above = [], 0.0
        for r in rho:
            out.append(ClassLaw(c_wait, nu, above, above + r))
            above += r
        return out
    turns = [(1.0 if discipline == "round_robin" else c.weight) * c.mean_service_s for c in loads]
    ahead = polling_loads_ahead(rho, turns, c_wait, floor=discipline == "weighted")
    return [ClassLaw(c_wait, nu, h, h + r) for h, r in zip(ahead, rho, strict=True)]


def polling_loads_ahead(
    rho: Sequence[float], turns: Sequence[float], c_wait: float, *, floor: bool
) -> list[float]:
    """h_j, the work effectively ahead of each class under round robin / weighted (see the
    module docstring); the total load Σρ >= 1 makes every class unstable (h_j = 1)."""
    total = sum(rho)
    if total >= 1.0:
        return [1.0] * len(rho)
    shares = polling_shares(rho, turns, floor=floor)
    gaps = [s - r for s, r in zip(shares, rho, strict=True)]
    if c_wait == 0.0 or min(gaps) <= 1e-12:
        return [total - r for r in rho]  # no margin anywhere: lowest priority for all
    raw = [c_wait / g for g in gaps]  # M/M/1 at the share, times ν
    pull = [(min(gaps) / g) ** RESIDUAL_POWER for g in gaps]
    conserved = total * c_wait / (1.0 - total)  # ρ·W_FCFS times ν (Kleinrock)
    kept = sum(r * w * (1.0 - u) for r, w, u in zip(rho, raw, pull, strict=True))
    scale = (conserved - kept) / sum(r * w * u for r, w, u in zip(rho, raw, pull, strict=True))
    waits = [max(w * (1.0 - u + u * scale), 0.0) for w, u in zip(raw, pull, strict=True)]
    out = []
    for r, w in zip(rho, waits, strict=True):
        if w <= 0.0:
            out.append(0.0)
            continue
        x = c_wait / w  # (1 − h)(1 − h − ρ_j)
        h = 1.0 - (r + math.sqrt(r * r + 4.0 * x)) / 2.0
        out.append(min(max(h, 0.0), total - r))
    return out


def polling_shares(rho: Sequence[float], turns: Sequence[float], *, floor: bool) -> list[float]:
    """s_j: class j's share of the pool's work while it has work waiting (damped fixed point
    over p_i; ``turns`` are the ω_i, ``floor`` the weighted pick's s_j >= 1 − Σ_{i≠j} ρ_i)."""
    p = [min(1.0, r) for r in rho]
    total = sum(rho)
    shares = [1.0] * len(rho)
    for _ in range(FIXED_POINT_ROUNDS):
        busy = sum(w * q for w, q in zip(turns, p, strict=True))
        shares = [w / (w + busy - w * q) for w, q in zip(turns, p, strict=True)]
        shares = [
            max(s, 1.0 - (total - r)) if floor or s <= r else s
            for s, r in zip(shares, rho, strict=True)
        ]
        new = [min(1.0, r / s) for r, s in zip(rho, shares, strict=True)]
        if max(abs(a - b) for a, b in zip(new, p, strict=True)) < 1e-12:
            break
        p = [(a + b) / 2.0 for a, b in zip(new, p, strict=True)]
    return shares
