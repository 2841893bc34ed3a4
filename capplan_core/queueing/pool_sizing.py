"""The least shared pool for which every class meets its own SLO (``required_workers_priority``).

A pool's workers serve several queues (classes) in a discipline's order: ``strict``
(non-preemptive priority, classes listed highest first), ``round_robin`` or ``weighted``.
Each class's wait law comes from ``pool_models`` (exact for strict M/M/c with one service
rate, else a named approximation), and the result says which (``model``, ``exact``).

Per-class SLO terms (a ``SloTerms`` each; any left ``None`` does not constrain):
- wait tail P(W_k > wait_s) <= 1 − wait_quantile; mean wait W_k <= mean_wait_s;
- backlog of the class λ_k·W_k <= max_backlog (Little's law);
- drain: the backlog of the class and of every class served before it (all classes for
  round robin / weighted) drains within drain_s at the work rate they leave free,
  c − Σ λ_i·E[S_i] (in worker-seconds per second);
- max_utilization applies to the pool: Σ λ_i·E[S_i] / c <= it.
Every class also needs its own stability. Under strict priority (exact, or Buzen–Bondi) every
term is monotone in c (C falls, ν and the free rate grow), so the least c is found by
galloping up from a count that certainly misses (the pool's load minus one) and bisecting, as
``sizing.required_workers``. The round-robin and weighted approximations are heuristics that
are not always monotone in c (rarely, by a few per cent, near a class's share), so for them a
count "meets" only when it and the next ``SETTLE_COUNTS`` counts all do: the answer never sits
on an isolated dip, and one worker fewer still misses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from capplan_core.queueing.pool_models import (
    EXACT_FCFS_MODEL,
    EXACT_MODEL,
    ClassLaw,
    ClassLoad,
    class_laws,
    model_name,
)
from capplan_core.queueing.search import least_passing
from capplan_core.queueing.sizing import TERM_ORDER, SloTerms, _lower_bound

DISCIPLINES: tuple[str, ...] = ("strict", "round_robin", "weighted")
SETTLE_COUNTS = 2


@dataclass(frozen=True)
class PoolClass:
    """One queue of a shared pool: its arrivals (jobs/s), its SLO, and optionally its own
    mean service time (s), service SCV and weight (``weighted`` discipline)."""

    name: str
    arrival_rate_per_s: float
    terms: SloTerms
    mean_service_s: float | None = None
    service_scv: float | None = None
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"PoolClass.name must be a non-empty string (got {self.name!r})")
        where = f"class {self.name!r}"
        r = self.arrival_rate_per_s
        if not math.isfinite(r) or r < 0:
            raise ValueError(f"{where}: arrival_rate_per_s must be finite and >= 0 (got {r!r})")
        m = self.mean_service_s
        if m is not None and (not math.isfinite(m) or m <= 0):
            raise ValueError(f"{where}: mean_service_s must be finite and > 0 (got {m!r})")
        v = self.service_scv
        if v is not None and (not math.isfinite(v) or v < 0):
            raise ValueError(f"{where}: service_scv must be finite and >= 0 (got {v!r})")
        if not math.isfinite(self.weight) or self.weight <= 0:
            raise ValueError(f"{where}: weight must be finite and > 0 (got {self.weight!r})")


@dataclass(frozen=True)
class ClassResult:
    """One class's predicted waits on the pool (times in s, backlog in jobs)."""

    name: str
    arrival_rate_per_s: float
    wait_probability: float
    mean_wait_s: float
    wait_quantile: float
    wait_quantile_s: float
    mean_queue_length: float
    meets_slo: bool
    failing_terms: tuple[str, ...]


@dataclass(frozen=True)
class PoolSizingResult:
    """Workers for a shared pool, each class's predictions at that count, and the model.

    ``binding_class``/``binding_term``: what one worker fewer would miss first (None/"none"
    when nothing would); ``feasible`` False when even ``max_workers`` misses a term."""

    workers: int
    discipline: str
    model: str
    exact: bool
    utilization: float
    classes: tuple[ClassResult, ...]
    binding_class: str | None
    binding_term: str
    feasible: bool = True


def _loads(
    classes: Sequence[PoolClass], mean_service_s: float, service_scv: float
) -> list[ClassLoad]:
    return [
        ClassLoad(
            c.arrival_rate_per_s,
            mean_service_s if c.mean_service_s is None else c.mean_service_s,
            service_scv if c.service_scv is None else c.service_scv,
            c.weight,
        )
        for c in classes
    ]


def _check(
    classes: Sequence[PoolClass],
    mean_service_s: float,
    service_scv: float,
    arrival_scv: float,
    discipline: str,
) -> None:
    if not classes:
        raise ValueError("classes must list at least one PoolClass")
    names = [c.name for c in classes]
    if len(set(names)) != len(names):
        raise ValueError(f"class names must be unique (got {names})")
    if discipline not in DISCIPLINES:
        raise ValueError(f"discipline must be one of {DISCIPLINES} (got {discipline!r})")
    if not math.isfinite(mean_service_s) or mean_service_s <= 0:
        raise ValueError(f"mean_service_s must be finite and > 0 (got {mean_service_s!r})")
    for name, v in (("service_scv", service_scv), ("arrival_scv", arrival_scv)):
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"{name} must be finite and >= 0 (got {v!r})")


def _class_failures(
    k: int,
    law: ClassLaw,
    classes: Sequence[PoolClass],
    loads: Sequence[ClassLoad],
    workers: int,
    discipline: str,
) -> list[str]:
    t = classes[k].terms
    if not law.stable:
        return [n for n in TERM_ORDER if n == "stability" or _set(t, n)]
    out = []
    if t.wait_s is not None and law.tail(t.wait_s) > 1.0 - t.wait_quantile:
        out.append("wait_quantile")
    if t.mean_wait_s is not None and law.mean_wait_s > t.mean_wait_s:
        out.append("mean_wait")
    if t.max_backlog is not None and loads[k].arrival_rate_per_s * law.mean_wait_s > (
        t.max_backlog
    ):
        out.append("max_backlog")
    if t.drain_s is not None:
        upto = k + 1 if discipline == "strict" else len(classes)
        backlog = sum(
            classes[i].terms.current_backlog * loads[i].mean_service_s for i in range(upto)
        )
        free = workers - sum(c.arrival_rate_per_s * c.mean_service_s for c in loads[:upto])
        if backlog > 0 and free * t.drain_s < backlog:
            out.append("drain")
    if t.max_utilization is not None and _work(loads) > t.max_utilization * workers:
        out.append("max_utilization")
    return out


def _set(t: SloTerms, term: str) -> bool:
    return {
        "wait_quantile": t.wait_s is not None,
        "mean_wait": t.mean_wait_s is not None,
        "max_backlog": t.max_backlog is not None,
        "drain": t.drain_s is not None,
        "max_utilization": t.max_utilization is not None,
    }.get(term, False)


def _work(loads: Sequence[ClassLoad]) -> float:
    return sum(c.arrival_rate_per_s * c.mean_service_s for c in loads)


def evaluate_pool(
    classes: Sequence[PoolClass],
    mean_service_s: float,
    workers: int,
    *,
    discipline: str = "strict",
    service_scv: float = 1.0,
    arrival_scv: float = 1.0,
) -> PoolSizingResult:
    """Each class's predicted waits and SLO verdict on ``workers`` workers."""
    _check(classes, mean_service_s, service_scv, arrival_scv, discipline)
    if isinstance(workers, bool) or int(workers) != workers or workers < 0:
        raise ValueError(f"workers must be a non-negative integer (got {workers!r})")
    loads = _loads(classes, mean_service_s, service_scv)
    laws = class_laws(loads, int(workers), discipline, arrival_scv)
    results = []
    for k, (c, law) in enumerate(zip(classes, laws, strict=True)):
        failing = _class_failures(k, law, classes, loads, int(workers), discipline)
        w = law.mean_wait_s
        results.append(
            ClassResult(
                name=c.name,
                arrival_rate_per_s=c.arrival_rate_per_s,
                wait_probability=law.wait_probability,
                mean_wait_s=w,
                wait_quantile=c.terms.wait_quantile,
                wait_quantile_s=law.quantile_s(c.terms.wait_quantile),
                mean_queue_length=0.0 if w == 0 else c.arrival_rate_per_s * w,
                meets_slo=not failing,
                failing_terms=tuple(failing),
            )
        )
    model = model_name(loads, discipline, arrival_scv)
    work = _work(loads)
    util = 0.0 if work == 0 else (math.inf if workers == 0 else work / workers)
    return PoolSizingResult(
        workers=int(workers),
        discipline=discipline,
        model=model,
        exact=model in (EXACT_MODEL, EXACT_FCFS_MODEL),
        utilization=util,
        classes=tuple(results),
        binding_class=None,
        binding_term="none",
    )


def required_workers_priority(
    classes: Sequence[PoolClass],
    mean_service_s: float,
    *,
    discipline: str = "strict",
    service_scv: float = 1.0,
    arrival_scv: float = 1.0,
    max_workers: int = 1_000_000,
) -> PoolSizingResult:
    """The least number of workers c for which every class meets its SLO terms.

    Args:
        classes: the pool's queues, in service order for ``strict`` (highest first).
        mean_service_s: mean time one worker spends on a job (s) for classes without their own.
        discipline: ``strict`` | ``round_robin`` | ``weighted``.
        service_scv, arrival_scv: squared coefficients of variation (1: exponential service,
            Poisson arrivals; other values use the approximations of ``pool_models``).
        max_workers: search limit; missing it gives ``feasible=False`` at ``max_workers``.

    Raises:
        ValueError: an empty or invalid class list, bad rate, time, SCV or discipline.
    """
    _check(classes, mean_service_s, service_scv, arrival_scv, discipline)

    def misses_at(c: int) -> bool:
        r = evaluate_pool(
            classes,
            mean_service_s,
            c,
            discipline=discipline,
            service_scv=service_scv,
            arrival_scv=arrival_scv,
        )
        return not all(x.meets_slo for x in r.classes)

    settle = 0 if discipline == "strict" or len(classes) == 1 else SETTLE_COUNTS

    def misses(c: int) -> bool:
        return any(misses_at(c + i) for i in range(settle + 1))

    work = _work(_loads(classes, mean_service_s, service_scv))
    lo = _lower_bound(work, 1.0)
    if lo >= max_workers:
        return _finish(
            classes,
            mean_service_s,
            max_workers,
            discipline,
            service_scv,
            arrival_scv,
            feasible=False,
        )
    least = least_passing(
        lambda c: not misses(c),
        failing=lo,
        start=int(math.floor(work)) + 1,
        limit=max_workers,
    )
    return _finish(
        classes,
        mean_service_s,
        max_workers if least is None else least,
        discipline,
        service_scv,
        arrival_scv,
        feasible=least is not None,
    )


def _finish(
    classes: Sequence[PoolClass],
    mean_service_s: float,
    workers: int,
    discipline: str,
    service_scv: float,
    arrival_scv: float,
    *,
    feasible: bool,
) -> PoolSizingResult:
    def at(c: int) -> PoolSizingResult:
        return evaluate_pool(
            classes,
            mean_service_s,
            c,
            discipline=discipline,
            service_scv=service_scv,
            arrival_scv=arrival_scv,
        )

    r = at(workers)
    probe = r if not feasible else (at(workers - 1) if workers > 0 else None)
    binding = next((x for x in probe.classes if x.failing_terms), None) if probe else None
    return PoolSizingResult(
        workers=r.workers,
        discipline=r.discipline,
        model=r.model,
        exact=r.exact,
        utilization=r.utilization,
        classes=r.classes,
        binding_class=binding.name if binding else None,
        binding_term=binding.failing_terms[0] if binding else "none",
        feasible=feasible,
    )
