"""Exact waits of an M/M/c pool serving several classes in non-preemptive priority order.

Model: Poisson arrivals of K classes (λ_1 … λ_K, class 1 served first), one exponential service
rate μ for every class, c workers; a free worker takes the oldest job of the highest class
waiting and finishes it (non-preemptive). ν = cμ, ρ_i = λ_i/ν, σ_k = ρ_1 + … + ρ_k (σ_0 = 0).

- **P(wait)**, the same for every class: the total number of jobs is the M/M/c birth–death
  chain whatever the order (one service rate), so an arrival finds every worker busy with
  the Erlang C probability C(c, a), a = λ/μ (PASTA). ``erlang.erlang_c``'s stable recursion.
- **Mean wait** (Cobham 1954): W_k = C / (ν·(1 − σ_{k−1})·(1 − σ_k)).
  A. Cobham, "Priority assignment in waiting line problems", J. Oper. Res. Soc. America 2(1),
  1954, 70–76; for c servers: Larson & Odoni, *Urban Operations Research*, 1981, §4.9.3.
- **Wait distribution** (Davis 1966): while every worker is busy, completions come at rate ν
  whatever is being served. A class-k arrival that waits finds N jobs of classes 1..k queued,
  P(N = n | wait) = (1 − σ_k)·σ_k^n (a level-crossing cut between n and n + 1 jobs of classes
  1..k: λ_{1..k}·p(n) = ν·p(n + 1)), and starts when N + 1 completions have happened, each
  one delayed by the class 1..k−1 jobs arriving meanwhile. So, given that it waits, W_k is a
  geometric sum (N + 1 terms) of independent busy periods of an M/M/1 queue with arrival rate
  a_k = ν·σ_{k−1} and service rate ν; whose Laplace transform is
  β(s) = 2ν / (s + a_k + ν + √((s + a_k + ν)² − 4·a_k·ν)), hence
  E[e^(−sW_k) | wait] = (1 − σ_k)·β(s) / (1 − σ_k·β(s)) and
  P(W_k > t) = C · G_k(t), Ĝ_k(s) = (1 − β) / (s·(1 − σ_k·β))
                                   = 4ν / ((√D − s − a_k + ν)·(s + a_k + ν + √D)·(1 − σ_k·β)),
  written without the cancellation of 1 − β at small s. G_k is inverted numerically by the
  Euler algorithm (``laplace.invert_euler``, ~1e-10 absolute). For class 1 (a_1 = 0) the busy
  period is exponential and the law is closed: P(W_1 > t) = C·exp(−(ν − λ_1)·t).
  R. H. Davis, "Waiting-time distribution of a multi-server, priority queuing system",
  Operations Research 14(1), 1966, 133–136 (the same law; Kella & Yechiali, Stochastic Models
  1(2), 1985, 257–262, derive its transform through the M/M/1 priority queue with rate cμ).
  Checks: one class gives Erlang C's exponential tail; the mean is Cobham's;
  Σ λ_k·W_k = λ·W_FCFS (Kleinrock's conservation law).

Stability is per class: class k's waits are finite iff σ_k < 1, even when a lower class
overloads the pool (then every worker is always busy and C = 1). Unstable classes give
probability 1 and ``math.inf`` waits, never NaN.
"""

from __future__ import annotations

import cmath
import math
from collections.abc import Callable, Sequence

import capplan_core.queueing.erlang as erlang
from capplan_core.queueing.laplace import invert_euler


def check_rates(
    arrival_rates_per_s: Sequence[float], service_rate_per_s: float, workers: int
) -> list[float]:
    """Validated class arrival rates (jobs/s, priority order); raises ValueError naming one."""
    rates = [float(r) for r in arrival_rates_per_s]
    if not rates:
        raise ValueError("arrival_rates_per_s must list at least one class")
    for i, r in enumerate(rates):
        if not math.isfinite(r) or r < 0:
            raise ValueError(f"arrival_rates_per_s[{i}] must be finite and >= 0 (got {r!r})")
    erlang._check_rates(sum(rates), service_rate_per_s, workers)
    return rates


def cumulative_loads(
    arrival_rates_per_s: Sequence[float], service_rate_per_s: float, workers: int
) -> list[float]:
    """σ_0 … σ_K: the load of classes 1..k on the whole pool (λ_1 + … + λ_k) / (cμ)."""
    nu = workers * service_rate_per_s
    out = [0.0]
    for r in arrival_rates_per_s:
        out.append(math.inf if nu == 0 and r > 0 else out[-1] + (r / nu if r else 0.0))
    return out


def all_busy_probability(
    arrival_rates_per_s: Sequence[float], service_rate_per_s: float, workers: int
) -> float:
    """C(c, a): the chance an arrival (of any class) finds every worker busy."""
    rates = check_rates(arrival_rates_per_s, service_rate_per_s, workers)
    return erlang.erlang_c(workers, sum(rates) / service_rate_per_s)


def cobham_mean_waits_s(
    arrival_rates_per_s: Sequence[float], service_rate_per_s: float, workers: int
) -> list[float]:
    """Mean queue wait of each class (s), highest priority first (Cobham's formula)."""
    rates = check_rates(arrival_rates_per_s, service_rate_per_s, workers)
    c_wait = erlang.erlang_c(workers, sum(rates) / service_rate_per_s)
    sig = cumulative_loads(rates, service_rate_per_s, workers)
    out = []
    for k in range(1, len(rates) + 1):
        if sig[k] >= 1.0:
            out.append(math.inf)
        elif c_wait == 0.0:
            out.append(0.0)
        else:
            nu = workers * service_rate_per_s
            out.append(c_wait / (nu * (1.0 - sig[k - 1]) * (1.0 - sig[k])))
    return out


def conditional_tail(nu_per_s: float, sigma_above: float, sigma_upto: float, t_s: float) -> float:
    """G(t) = P(W > t | the job waits) for a class with loads σ_{k−1} = ``sigma_above`` and
    σ_k = ``sigma_upto`` on a pool completing ν = ``nu_per_s`` jobs/s while all busy."""
    if t_s <= 0.0:
        return 1.0
    if sigma_upto >= 1.0:
        return 1.0
    if sigma_above == 0.0:
        return math.exp(-nu_per_s * (1.0 - sigma_upto) * t_s)
    a = nu_per_s * sigma_above

    def transform(s: complex) -> complex:
        w = s + a + nu_per_s
        root = cmath.sqrt(w * w - 4.0 * a * nu_per_s)
        if (root * w.conjugate()).real < 0.0:  # the root with |β| <= 1
            root = -root
        beta = 2.0 * nu_per_s / (w + root)
        return 4.0 * nu_per_s / ((root - s - a + nu_per_s) * (w + root) * (1.0 - sigma_upto * beta))

    return min(1.0, max(0.0, invert_euler(transform, t_s)))


def class_wait_tail(
    arrival_rates_per_s: Sequence[float],
    service_rate_per_s: float,
    workers: int,
    k: int,
    t_s: float,
) -> float:
    """P(W_k > t) for class ``k`` (0-based, 0 = highest priority); exact (Davis 1966)."""
    rates = check_rates(arrival_rates_per_s, service_rate_per_s, workers)
    _check_class(k, len(rates))
    if not math.isfinite(t_s) or t_s < 0:
        raise ValueError(f"t_s must be finite and >= 0 (got {t_s!r})")
    c_wait = erlang.erlang_c(workers, sum(rates) / service_rate_per_s)
    sig = cumulative_loads(rates, service_rate_per_s, workers)
    if sig[k + 1] >= 1.0:
        return 1.0
    if c_wait == 0.0 or t_s == 0.0:
        return c_wait
    return c_wait * conditional_tail(workers * service_rate_per_s, sig[k], sig[k + 1], t_s)


def class_wait_quantile_s(
    arrival_rates_per_s: Sequence[float], service_rate_per_s: float, workers: int, k: int, q: float
) -> float:
    """The q-quantile of class ``k``'s queue wait (s): the least t with P(W_k <= t) >= q.

    0 when P(wait) <= 1 − q; ``math.inf`` when classes 1..k overload the pool.
    """
    rates = check_rates(arrival_rates_per_s, service_rate_per_s, workers)
    _check_class(k, len(rates))
    c_wait = erlang.erlang_c(workers, sum(rates) / service_rate_per_s)
    sig = cumulative_loads(rates, service_rate_per_s, workers)
    return quantile_from_law(c_wait, workers * service_rate_per_s, sig[k], sig[k + 1], q)


def quantile_from_law(
    c_wait: float, nu_per_s: float, sigma_above: float, sigma_upto: float, q: float
) -> float:
    """The q-quantile of W where P(W > t) = c_wait · G(t) (``conditional_tail``'s law)."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be in (0, 1) (got {q!r})")
    if c_wait <= 1.0 - q:
        return 0.0
    if sigma_upto >= 1.0:
        return math.inf
    if math.isinf(nu_per_s):  # no variability at all (Allen–Cunneen factor 0): no wait
        return 0.0
    target = (1.0 - q) / c_wait
    decay_per_s = nu_per_s * (1.0 - sigma_upto)
    if sigma_above == 0.0:
        return math.log(1.0 / target) / decay_per_s
    mean_s = 1.0 / (decay_per_s * (1.0 - sigma_above))
    hi = mean_s * max(1.0, math.log(1.0 / target))
    while conditional_tail(nu_per_s, sigma_above, sigma_upto, hi) > target:
        hi *= 2.0
    return decreasing_root(
        lambda t: conditional_tail(nu_per_s, sigma_above, sigma_upto, t) - target, 0.0, hi
    )


ROOT_REL_TOL = 1e-12


def decreasing_root(f: Callable[[float], float], lo: float, hi: float) -> float:
    """The t in [lo, hi] where a decreasing f crosses 0 (f(lo) > 0 >= f(hi)), to ROOT_REL_TOL.

    The Illinois variant of regula falsi (Dowell & Jarratt, BIT 11, 1971), halving the
    interval whenever a step gains less than half of it, so it never does worse than bisection.
    """
    f_lo, f_hi = f(lo), f(hi)
    side = 0
    while hi - lo > ROOT_REL_TOL * hi:
        width = hi - lo
        t = hi - f_hi * (hi - lo) / (f_hi - f_lo) if f_hi != f_lo else 0.5 * (lo + hi)
        if not lo < t < hi:
            t = 0.5 * (lo + hi)
        f_t = f(t)
        if f_t == 0.0:
            return t
        if f_t > 0.0:
            lo, f_lo = t, f_t
            f_hi = f_hi / 2.0 if side == 1 else f_hi
            side = 1
        else:
            hi, f_hi = t, f_t
            f_lo = f_lo / 2.0 if side == -1 else f_lo
            side = -1
        if hi - lo > 0.5 * width:
            mid = 0.5 * (lo + hi)
            f_mid = f(mid)
            if f_mid > 0.0:
                lo, f_lo = mid, f_mid
            else:
                hi, f_hi = mid, f_mid
            side = 0
    return 0.5 * (lo + hi)


def _check_class(k: int, n_classes: int) -> None:
    if isinstance(k, bool) or int(k) != k or not 0 <= k < n_classes:
        raise ValueError(f"class index k must be in 0..{n_classes - 1} (got {k!r})")
