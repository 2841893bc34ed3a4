"""Least number of workers meeting every SLO term (queue-wait SLO sizing).

Every term is monotone in the number of workers c (Erlang C, the mean wait, the wait tail and
the queue length all fall as c grows — Gross & Harris §2.3; the drain rate cμ − λ and the
utilisation λ/(cμ) trivially so), hence "c meets the SLO" is a step function of c and the
least such c is found by galloping from a lower bound and then bisecting. Each check is one
O(c) Erlang B recursion, so sizing for thousands of workers takes milliseconds.

Terms (any left ``None`` does not constrain):
- wait tail: P(W > ``wait_s``) <= 1 − ``wait_quantile`` (i.e. the quantile wait <= wait_s);
- mean wait Wq <= ``mean_wait_s``;
- expected backlog Lq <= ``max_backlog`` (jobs waiting);
- drain: the ``current_backlog`` drains at the surplus rate cμ − λ within ``drain_s``;
- utilisation λ/(cμ) <= ``max_utilization``.
Stability (λ < cμ) is always required when λ > 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import capplan_core.queueing.erlang as erlang
from capplan_core.queueing.search import least_passing

TERM_ORDER = ("stability", "wait_quantile", "mean_wait", "max_backlog", "drain", "max_utilization")


@dataclass(frozen=True)
class SloTerms:
    """The SLO a pool is sized to. Times in seconds, backlog in jobs."""

    wait_s: float | None
    wait_quantile: float = 0.95
    mean_wait_s: float | None = None
    max_backlog: float | None = None
    drain_s: float | None = None
    max_utilization: float | None = None
    current_backlog: float = 0.0

    def __post_init__(self) -> None:
        for name in ("wait_s", "mean_wait_s", "max_backlog", "drain_s"):
            v = getattr(self, name)
            if v is not None and (not math.isfinite(v) or v <= 0):
                raise ValueError(f"SloTerms.{name} must be finite and > 0 (got {v!r})")
        if not 0.0 < self.wait_quantile < 1.0:
            raise ValueError(
                f"SloTerms.wait_quantile must be in (0, 1) (got {self.wait_quantile!r})"
            )
        u = self.max_utilization
        if u is not None and not 0.0 < u <= 1.0:
            raise ValueError(f"SloTerms.max_utilization must be in (0, 1] (got {u!r})")
        b = self.current_backlog
        if not math.isfinite(b) or b < 0:
            raise ValueError(f"SloTerms.current_backlog must be finite and >= 0 (got {b!r})")


@dataclass(frozen=True)
class SizingResult:
    """Workers needed and the queueing model's predictions at that count."""

    workers: int
    utilization: float
    wait_probability: float
    mean_wait_s: float
    wait_quantile_s: float
    binding_term: str  # the term that needed the last worker (see TERM_ORDER)
    feasible: bool = True  # False when even ``max_workers`` misses a term
    mean_queue_length: float = 0.0


def failing_terms(
    arrival_rate_per_s: float,
    mean_service_s: float,
    workers: int,
    terms: SloTerms,
    *,
    service_scv: float = 1.0,
    arrival_scv: float = 1.0,
) -> list[str]:
    """The SLO terms that ``workers`` misses, in TERM_ORDER (empty: all met)."""
    mu = _service_rate(mean_service_s)
    lam = arrival_rate_per_s
    scv = {"arrival_scv": arrival_scv, "service_scv": service_scv}
    if not erlang.is_stable(lam, mu, workers):
        return [t for t in TERM_ORDER if t == "stability" or _term_set(terms, t)]
    out: list[str] = []
    if (
        terms.wait_s is not None
        and erlang.prob_wait_exceeds(lam, mu, workers, terms.wait_s, **scv)
        > 1.0 - terms.wait_quantile
    ):
        out.append("wait_quantile")
    if (
        terms.mean_wait_s is not None
        and erlang.mean_wait_s(lam, mu, workers, **scv) > terms.mean_wait_s
    ):
        out.append("mean_wait")
    if (
        terms.max_backlog is not None
        and erlang.mean_queue_length(lam, mu, workers, **scv) > terms.max_backlog
    ):
        out.append("max_backlog")
    if (
        terms.drain_s is not None
        and terms.current_backlog > 0
        and ((workers * mu - lam) * terms.drain_s < terms.current_backlog)
    ):
        out.append("drain")
    if terms.max_utilization is not None and lam > terms.max_utilization * workers * mu:
        out.append("max_utilization")
    return out


def _term_set(terms: SloTerms, term: str) -> bool:
    return {
        "wait_quantile": terms.wait_s is not None,
        "mean_wait": terms.mean_wait_s is not None,
        "max_backlog": terms.max_backlog is not None,
        "drain": terms.drain_s is not None and terms.current_backlog > 0,
        "max_utilization": terms.max_utilization is not None,
    }.get(term, False)


def _service_rate(mean_service_s: float) -> float:
    if not math.isfinite(mean_service_s) or mean_service_s <= 0:
        raise ValueError(f"mean_service_s must be finite and > 0 (got {mean_service_s!r})")
    return 1.0 / mean_service_s


def _lower_bound(lam: float, mu: float) -> int:
    """A c that certainly misses the SLO (−1 when even c = 0 may meet it, i.e. no arrivals).

    floor(a) − 1 < a is unstable with a margin of a whole worker, so float rounding of
    a = λ/μ cannot make it stable.
    """
    if lam == 0:
        return -1
    return max(-1, int(math.floor(lam / mu)) - 1)


def _start_guess(lam: float, mu: float, terms: SloTerms, floor_c: int) -> int:
    """A first guess: the least stable c, raised by the closed-form terms (drain, utilisation).

    Only a starting point: bisection below it still finds the least c if rounding overshoots.
    """
    guess = floor_c + 1
    if lam > 0:
        guess = max(guess, int(math.floor(lam / mu)) + 1)
    if terms.max_utilization is not None and lam > 0:
        guess = max(guess, math.ceil(lam / (mu * terms.max_utilization)))
    if terms.drain_s is not None and terms.current_backlog > 0:
        guess = max(guess, math.ceil((lam + terms.current_backlog / terms.drain_s) / mu))
    return guess


def required_workers(
    arrival_rate_per_s: float,
    mean_service_s: float,
    terms: SloTerms,
    *,
    service_scv: float = 1.0,
    arrival_scv: float = 1.0,
    max_workers: int = 1_000_000,
) -> SizingResult:
    """The least number of workers c meeting every term of ``terms``.

    Gallops up from a lower bound (doubling the step) until a c meets the SLO, then bisects
    between the last miss and the first hit; correct because every term is monotone in c.

    Args:
        arrival_rate_per_s: λ, jobs/s (>= 0).
        mean_service_s: mean service time of one job on one worker (s, > 0); μ = 1/it.
        terms: the SLO.
        service_scv, arrival_scv: squared coefficients of variation (1 = exponential /
            Poisson); other values use Allen–Cunneen.
        max_workers: search limit; if it misses the SLO the result has ``feasible=False``
            and ``workers == max_workers``.

    Raises:
        ValueError: a negative or non-finite rate, time or SCV (message names it).
    """
    lam = float(arrival_rate_per_s)
    mu = _service_rate(mean_service_s)
    erlang._check_rates(lam, mu, 0)
    erlang._variability_factor(arrival_scv, service_scv)

    def misses(c: int) -> bool:
        return bool(
            failing_terms(
                lam, mean_service_s, c, terms, service_scv=service_scv, arrival_scv=arrival_scv
            )
        )

    lo = _lower_bound(lam, mu)  # misses the SLO (or is the −1 sentinel)
    if lo >= max_workers:
        return _infeasible(lam, mean_service_s, max_workers, terms, service_scv, arrival_scv)
    least = least_passing(
        lambda c: not misses(c),
        failing=lo,
        start=_start_guess(lam, mu, terms, lo),
        limit=max_workers,
    )
    if least is None:
        return _infeasible(lam, mean_service_s, max_workers, terms, service_scv, arrival_scv)
    hi = least
    binding = "none"
    if hi > 0:
        prev = failing_terms(
            lam, mean_service_s, hi - 1, terms, service_scv=service_scv, arrival_scv=arrival_scv
        )
        binding = prev[0] if prev else "none"
    return _result(lam, mu, hi, terms, service_scv, arrival_scv, binding=binding, feasible=True)


CAPACITY_BISECTIONS = 30  # λ_max to 2^-30 of the pool's full service rate


def capacity_at_slo(
    workers: int, mean_service_s: float, terms: SloTerms, service_scv: float = 1.0
) -> float:
    """The largest arrival rate (jobs/s) ``workers`` serve within every SLO term (bisection;
    every term is monotone in the rate): the inverse of :func:`required_workers`."""
    if workers <= 0:
        return 0.0
    lo, hi = 0.0, workers / mean_service_s

    def meets(lam: float) -> bool:
        return not failing_terms(lam, mean_service_s, workers, terms, service_scv=service_scv)

    for _ in range(CAPACITY_BISECTIONS):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if meets(mid) else (lo, mid)
    return lo


def _infeasible(
    lam: float,
    mean_service_s: float,
    max_workers: int,
    terms: SloTerms,
    service_scv: float,
    arrival_scv: float,
) -> SizingResult:
    mu = 1.0 / mean_service_s
    missed = failing_terms(
        lam, mean_service_s, max_workers, terms, service_scv=service_scv, arrival_scv=arrival_scv
    )
    return _result(
        lam,
        mu,
        max_workers,
        terms,
        service_scv,
        arrival_scv,
        binding=(missed or ["stability"])[0],
        feasible=False,
    )


def _result(
    lam: float,
    mu: float,
    c: int,
    terms: SloTerms,
    service_scv: float,
    arrival_scv: float,
    *,
    binding: str,
    feasible: bool,
) -> SizingResult:
    scv = {"arrival_scv": arrival_scv, "service_scv": service_scv}
    q = terms.wait_quantile
    return SizingResult(
        workers=c,
        utilization=erlang.utilization(lam, mu, c),
        wait_probability=erlang.wait_probability(lam, mu, c),
        mean_wait_s=erlang.mean_wait_s(lam, mu, c, **scv),
        wait_quantile_s=erlang.wait_quantile_s(lam, mu, c, q, **scv),
        binding_term=binding,
        feasible=feasible,
        mean_queue_length=erlang.mean_queue_length(lam, mu, c, **scv),
    )
