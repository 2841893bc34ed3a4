"""M/M/c queue metrics (Erlang C) and the Allen–Cunneen G/G/c approximation.

Notation: arrival rate λ (jobs/s), service rate μ of one busy worker (jobs/s), ``workers`` c,
offered load a = λ/μ (Erlangs), utilisation ρ = a/c.

Sources:
- Erlang B by the stable recursion B(0, a) = 1, B(k, a) = a·B(k−1, a) / (k + a·B(k−1, a))
  (no factorials or powers, so it is exact to rounding for c in the tens of thousands);
  Erlang C from Erlang B: C = c·B / (c − a + a·B).  Gross, Shortle, Thompson & Harris,
  *Fundamentals of Queueing Theory*, 4th ed., §2.3 (M/M/c) and §2.5 (M/M/c/c).
- M/M/c waiting time: P(W > t) = C·exp(−(cμ − λ)·t), Wq = C / (cμ − λ), Lq = λ·Wq
  (Gross & Harris §2.3; Little's law).
- General arrivals and service (G/G/c): the Allen–Cunneen approximation scales the M/M/c wait
  by (c_a² + c_s²)/2, where c_a², c_s² are the squared coefficients of variation of the
  inter-arrival and service times (Allen, *Probability, Statistics and Queueing Theory*, 1990,
  §6.5; Gross & Harris §7.3). P(wait) stays the Erlang C value; the conditional wait is kept
  exponential with its mean scaled by the same factor, so tail and quantiles scale alike.

Unstable systems (λ ≥ cμ with λ > 0) give probability 1 and ``math.inf`` waits, never NaN.
With no arrivals (λ = 0) nobody waits, whatever c is.
"""

from __future__ import annotations

import math


def _check_load(workers: int, offered_load: float) -> None:
    if isinstance(workers, bool) or int(workers) != workers or workers < 0:
        raise ValueError(f"workers must be a non-negative integer (got {workers!r})")
    if not math.isfinite(offered_load) or offered_load < 0:
        raise ValueError(f"offered load must be finite and >= 0 (got {offered_load!r})")


def _check_rates(arrival_rate_per_s: float, service_rate_per_s: float, workers: int) -> None:
    if not math.isfinite(arrival_rate_per_s) or arrival_rate_per_s < 0:
        raise ValueError(f"arrival_rate_per_s must be finite and >= 0 (got {arrival_rate_per_s!r})")
    if not math.isfinite(service_rate_per_s) or service_rate_per_s <= 0:
        raise ValueError(f"service_rate_per_s must be finite and > 0 (got {service_rate_per_s!r})")
    _check_load(workers, arrival_rate_per_s / service_rate_per_s)


def _variability_factor(arrival_scv: float, service_scv: float) -> float:
    for name, v in (("arrival_scv", arrival_scv), ("service_scv", service_scv)):
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"{name} must be finite and >= 0 (got {v!r})")
    return (arrival_scv + service_scv) / 2.0


def erlang_b(workers: int, offered_load: float) -> float:
    """Erlang B blocking probability B(c, a) of an M/M/c/c loss system.

    Args:
        workers: number of servers c >= 0.
        offered_load: a = λ/μ in Erlangs, >= 0.
    """
    _check_load(workers, offered_load)
    b = 1.0
    a = float(offered_load)
    for k in range(1, int(workers) + 1):
        ab = a * b
        b = ab / (k + ab)
    return b


def erlang_c(workers: int, offered_load: float) -> float:
    """Erlang C: probability that an arriving job waits in an M/M/c queue.

    Returns 1.0 for an unstable system (a >= c, a > 0) and 0.0 when a = 0.
    """
    _check_load(workers, offered_load)
    c, a = int(workers), float(offered_load)
    if a == 0.0:
        return 0.0
    if a >= c:
        return 1.0
    b = erlang_b(c, a)
    # c − a + a·B instead of c − a·(1 − B): no cancellation when ρ is close to 1
    return min(1.0, c * b / ((c - a) + a * b))


def is_stable(arrival_rate_per_s: float, service_rate_per_s: float, workers: int) -> bool:
    """True when the queue does not grow without bound (λ < cμ, or no arrivals)."""
    _check_rates(arrival_rate_per_s, service_rate_per_s, workers)
    return arrival_rate_per_s == 0 or arrival_rate_per_s < workers * service_rate_per_s


def utilization(arrival_rate_per_s: float, service_rate_per_s: float, workers: int) -> float:
    """ρ = λ/(cμ); ``math.inf`` for c = 0 with arrivals, 0 with no arrivals."""
    _check_rates(arrival_rate_per_s, service_rate_per_s, workers)
    if arrival_rate_per_s == 0:
        return 0.0
    if workers == 0:
        return math.inf
    return arrival_rate_per_s / (workers * service_rate_per_s)


def wait_probability(arrival_rate_per_s: float, service_rate_per_s: float, workers: int) -> float:
    """P(W > 0), the Erlang C value (the same under Allen–Cunneen)."""
    _check_rates(arrival_rate_per_s, service_rate_per_s, workers)
    return erlang_c(workers, arrival_rate_per_s / service_rate_per_s)


def mean_wait_s(
    arrival_rate_per_s: float,
    service_rate_per_s: float,
    workers: int,
    *,
    arrival_scv: float = 1.0,
    service_scv: float = 1.0,
) -> float:
    """Mean queue wait Wq (s): C/(cμ − λ) for M/M/c, times (c_a² + c_s²)/2 (Allen–Cunneen)."""
    k = _variability_factor(arrival_scv, service_scv)
    c_wait = wait_probability(arrival_rate_per_s, service_rate_per_s, workers)
    if c_wait == 0.0:
        return 0.0
    if not is_stable(arrival_rate_per_s, service_rate_per_s, workers):
        return math.inf
    return k * c_wait / (workers * service_rate_per_s - arrival_rate_per_s)


def mean_queue_length(
    arrival_rate_per_s: float,
    service_rate_per_s: float,
    workers: int,
    *,
    arrival_scv: float = 1.0,
    service_scv: float = 1.0,
) -> float:
    """Mean number of jobs waiting Lq = λ·Wq (Little's law); ``math.inf`` when unstable."""
    w = mean_wait_s(
        arrival_rate_per_s,
        service_rate_per_s,
        workers,
        arrival_scv=arrival_scv,
        service_scv=service_scv,
    )
    return 0.0 if w == 0.0 else arrival_rate_per_s * w


def prob_wait_exceeds(
    arrival_rate_per_s: float,
    service_rate_per_s: float,
    workers: int,
    t_s: float,
    *,
    arrival_scv: float = 1.0,
    service_scv: float = 1.0,
) -> float:
    """P(W > t) = C·exp(−(cμ − λ)·t / k), k = (c_a² + c_s²)/2 (k = 1 for M/M/c)."""
    if not math.isfinite(t_s) or t_s < 0:
        raise ValueError(f"t_s must be finite and >= 0 (got {t_s!r})")
    k = _variability_factor(arrival_scv, service_scv)
    c_wait = wait_probability(arrival_rate_per_s, service_rate_per_s, workers)
    if c_wait == 0.0 or t_s == 0.0:
        return c_wait
    if not is_stable(arrival_rate_per_s, service_rate_per_s, workers):
        return 1.0
    if k == 0.0:  # deterministic arrivals and service: the approximation predicts no wait
        return 0.0
    decay_per_s = (workers * service_rate_per_s - arrival_rate_per_s) / k
    return c_wait * math.exp(-decay_per_s * t_s)


def wait_quantile_s(
    arrival_rate_per_s: float,
    service_rate_per_s: float,
    workers: int,
    q: float,
    *,
    arrival_scv: float = 1.0,
    service_scv: float = 1.0,
) -> float:
    """The q-quantile of the queue wait (s): the least t with P(W <= t) >= q.

    0 when P(wait) <= 1 − q, else k·ln(C / (1 − q)) / (cμ − λ); ``math.inf`` when unstable.
    """
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be in (0, 1) (got {q!r})")
    k = _variability_factor(arrival_scv, service_scv)
    c_wait = wait_probability(arrival_rate_per_s, service_rate_per_s, workers)
    if c_wait <= 1.0 - q:
        return 0.0
    if not is_stable(arrival_rate_per_s, service_rate_per_s, workers):
        return math.inf
    decay_per_s = workers * service_rate_per_s - arrival_rate_per_s
    return k * math.log(c_wait / (1.0 - q)) / decay_per_s
