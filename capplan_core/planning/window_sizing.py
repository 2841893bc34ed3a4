"""Workers each planning window needs: queueing sizing, safety margin, min/max and budget.

For window i with forecast demand d_i (jobs/s at the sizing quantile, :func:`sizing_quantile`):
1. the queueing model sizes the pool for the SLO at d_i (``model_workers``) and at
   d_i·(1 + m) (``sized_workers``; the difference is the margin's workers), with m the
   policy's safety margin — or 0 when the SLO sets ``target_attainment`` and the demand was
   read at that quantile: the quantile then already covers the forecast's error, and a
   margin on top would count it twice (a demand read at another quantile keeps the margin);
2. the decide loop's ``extra_workers`` are added on top (``wanted_workers``);
3. ``min_workers`` raises, ``max_workers`` and the budget cap
   (floor(budget_per_hour / worker_hour)) lower it (``needed_workers``). When a cap lowers it
   the SLO is not achievable and the window says which cap and by how much.

With ``slo.attainment_mode: pooled`` (and the demand's predictive distribution passed in),
step 1 is replaced by a risk budget over the horizon (``pooled_sizing``): the counts are the
fewest worker-hours whose *expected share* of windows meeting the SLO is
``target_attainment``, no window below its floor. ``model_workers`` is then still the
per-window count at the quantile, and ``sized_workers − model_workers`` the workers the
pooled budget moved (negative where a window takes more than the average risk).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from capplan_core.planning import defaults
from capplan_core.planning.pooled_sizing import (
    DemandDistribution,
    capacity_fn,
    pooled_allocation,
    window_floor,
)
from capplan_core.policy import ScalingPolicy, SloSpec
from capplan_core.queueing.sizing import (
    SloTerms,
    capacity_at_slo,
    required_workers,
)

SIZING_SEARCH_LIMIT = 1_000_000  # workers; far above any pool, so "feasible" means "found"


@dataclass(frozen=True)
class WindowNeed:
    """One planning window's sizing, and every adjustment made to it (workers)."""

    index: int
    start: datetime
    demand_per_s: float
    demand_quantile: float
    safety_margin: float
    arrival_rate_per_s: float  # demand · (1 + margin), what the pool is sized to
    model_workers: int  # queueing model at the bare demand
    sized_workers: int  # queueing model at demand + margin
    extra_workers: int
    wanted_workers: int  # sized + extra, before min/max/budget
    needed_workers: int  # after min/max/budget
    binding_term: str
    drains_backlog: bool
    constraints: list[dict[str, object]] = field(default_factory=list)
    attainment_mode: str = "per_window"  # "pooled": sized_workers from the risk budget
    met_probability: float | None = None  # pooled: P(window meets the SLO | sized_workers)

    @property
    def margin_workers(self) -> int:
        return self.sized_workers - self.model_workers

    @property
    def capped_by(self) -> str | None:
        """'max' or 'budget' when a cap lowered the workers below what the SLO wants."""
        cuts = [c for c in self.constraints if c["constraint"] in ("max", "budget")]
        return str(cuts[-1]["constraint"]) if cuts else None


def slo_terms_from_policy(policy: ScalingPolicy, current_backlog: float) -> SloTerms:
    """The policy's SLO as sizing terms; ``current_backlog`` (jobs) feeds the drain term."""
    return slo_terms(policy.slo, current_backlog)


def slo_terms(s: SloSpec, current_backlog: float) -> SloTerms:
    """An SLO (a policy's, or one queue's of a shared pool) as sizing terms."""
    return SloTerms(
        wait_s=s.wait_seconds,
        wait_quantile=s.wait_quantile,
        mean_wait_s=s.mean_wait_seconds,
        max_backlog=s.max_backlog,
        drain_s=s.drain_seconds,
        max_utilization=s.max_utilization,
        current_backlog=max(0.0, float(current_backlog)),
    )


def sizing_quantile(policy: ScalingPolicy) -> float:
    """The forecast-demand quantile each window is sized to: the attainment target (set, or
    derived from the SLO: ``defaults.target_attainment``; a window sized to the q-quantile of
    a calibrated forecast meets its demand with probability q), else the legacy
    ``forecast.demand_quantile``."""
    target = defaults.target_attainment(policy)
    return defaults.demand_quantile(policy) if target is None else float(target)


def sizing_margin(policy: ScalingPolicy, demand_quantile: float | None = None) -> float:
    """The safety margin added on top of the demand: 0 when the demand is at the attainment
    target's quantile (``demand_quantile`` None: assumed to be :func:`sizing_quantile`), else
    the legacy ``scaling.safety_margin``."""
    target = defaults.target_attainment(policy)
    q = sizing_quantile(policy) if demand_quantile is None else demand_quantile
    return 0.0 if target is not None and abs(q - target) < 1e-12 else defaults.safety_margin(policy)


def budget_cap_workers(policy: ScalingPolicy) -> int | None:
    """floor(budget_per_hour / worker_hour), or None without a budget (or free workers)."""
    budget, price = policy.scaling.budget_per_hour, policy.cost.worker_hour
    if budget is None or price <= 0:
        return None
    return int(math.floor(budget / price + 1e-9))  # 1e-9: 1.5/0.5 must give 3, not 2


def window_needs(
    policy: ScalingPolicy,
    *,
    now: datetime,
    window_starts: list[datetime],
    demand_per_s: list[float],
    extra_workers: list[int],
    current_backlog: float,
    mean_service_s: float,
    service_scv: float,
    demand_quantile: float | None = None,
    distribution: DemandDistribution | None = None,
    pooled_target: float | None = None,
    capacity: Callable[[int, SloTerms], float] | None = None,
) -> list[WindowNeed]:
    """Size every window and apply min/max/budget (see the module docstring).

    ``demand_quantile``: the quantile ``demand_per_s`` was read at (None: the policy's
    ``forecast.demand_quantile``, what callers that predate ``target_attainment`` pass).
    ``distribution``: the demand's predictive distribution per window; with
    ``slo.attainment_mode: pooled`` and a demand at ``target_attainment`` the windows are
    sized by the pooled risk budget (without it, per window as before); ``pooled_target``
    spends the budget to another mean P(met) than ``target_attainment`` (the floor stays the
    target's), ``capacity`` is a shared ``pooled_sizing.capacity_fn`` cache."""
    sc = policy.scaling
    terms = slo_terms_from_policy(policy, current_backlog)
    no_backlog = replace(terms, current_backlog=0.0)
    drain_until = now + timedelta(seconds=policy.slo.drain_seconds or 0.0)
    cap = budget_cap_workers(policy)
    quantile = defaults.demand_quantile(policy) if demand_quantile is None else demand_quantile
    margin = sizing_margin(policy, quantile)
    # the current backlog must drain in the first window and any window starting before
    # its drain deadline; later windows start with no backlog
    drains_at = [
        terms.drain_s is not None and terms.current_backlog > 0 and (i == 0 or start < drain_until)
        for i, start in enumerate(window_starts)
    ]
    window_terms = [terms if d else no_backlog for d in drains_at]
    pooled = _pooled(
        policy,
        quantile,
        distribution,
        window_terms,
        mean_service_s,
        service_scv,
        cap,
        pooled_target,
        capacity,
    )
    out: list[WindowNeed] = []
    for i, (start, demand) in enumerate(zip(window_starts, demand_per_s, strict=True)):
        t = window_terms[i]
        drains = drains_at[i]
        lam = float(demand) * (1.0 + margin)
        bare = required_workers(
            float(demand),
            mean_service_s,
            t,
            service_scv=service_scv,
            max_workers=SIZING_SEARCH_LIMIT,
        )
        sized = required_workers(
            lam, mean_service_s, t, service_scv=service_scv, max_workers=SIZING_SEARCH_LIMIT
        )
        sized_workers, met_p = sized.workers, None
        if pooled is not None:
            sized_workers, met_p = pooled[i]
        extra = int(extra_workers[i])
        wanted = sized_workers + extra
        needed, constraints = clamp_workers(wanted, sc.min_workers, sc.max_workers, cap)
        out.append(
            WindowNeed(
                index=i,
                start=start,
                demand_per_s=float(demand),
                demand_quantile=quantile,
                safety_margin=margin,
                arrival_rate_per_s=lam,
                model_workers=bare.workers,
                sized_workers=sized_workers,
                extra_workers=extra,
                wanted_workers=wanted,
                needed_workers=needed,
                binding_term=sized.binding_term,
                drains_backlog=drains,
                constraints=constraints,
                attainment_mode="pooled" if pooled is not None else "per_window",
                met_probability=met_p,
            )
        )
    return out


def _pooled(
    policy: ScalingPolicy,
    quantile: float,
    dist: DemandDistribution | None,
    window_terms: list[SloTerms],
    mean_service_s: float,
    service_scv: float,
    budget_cap: int | None,
    pooled_target: float | None = None,
    capacity: Callable[[int, SloTerms], float] | None = None,
) -> list[tuple[int, float]] | None:
    """(workers, P(met)) per window from the pooled risk budget, or None when the policy
    does not pool (or no distribution was given, or the demand is not at the target)."""
    target = defaults.target_attainment(policy)
    if (
        defaults.attainment_mode(policy) != "pooled"
        or dist is None
        or target is None
        or abs(quantile - target) > 1e-12
    ):
        return None
    if dist.windows != len(window_terms):
        raise ValueError(f"demand distribution has {dist.windows} windows for {len(window_terms)}")
    sc = policy.scaling
    upper = sc.max_workers if budget_cap is None else min(sc.max_workers, budget_cap)
    upper = max(upper, sc.min_workers)
    capacity = capacity or capacity_fn(mean_service_s, service_scv)
    floor = window_floor(float(target))
    alloc = pooled_allocation(
        dist,
        window_terms,
        mean_service_s=mean_service_s,
        service_scv=service_scv,
        target_attainment=float(target if pooled_target is None else pooled_target),
        min_workers=sc.min_workers,
        max_workers=upper,
        capacity=capacity,
        floor=floor,
        uncertain_floor=float(target),
    )
    top = float(dist.levels[-1])
    short = alloc.expected_attainment < float(target) - 1e-9
    out = []
    for i, (c, p) in enumerate(zip(alloc.workers, alloc.met_probability, strict=True)):
        # a cap that keeps a window below its floor, or the horizon below the target while
        # this window could still gain: size it as the floor (target) wants, so the clamp
        # records the cap and the SLO is reported not achievable
        want = (
            floor
            if p < min(floor, top) - 1e-9
            else float(target)
            if short and p < min(float(target), top) - 1e-9
            else None
        )
        if want is not None and c >= upper:
            c = max(
                c,
                required_workers(
                    dist.quantile(i, want),
                    mean_service_s,
                    window_terms[i],
                    service_scv=service_scv,
                    max_workers=SIZING_SEARCH_LIMIT,
                ).workers,
            )
        out.append((int(c), float(p)))
    return out


def clamp_workers(
    wanted: int, min_workers: int, max_workers: int, budget_cap: int | None
) -> tuple[int, list[dict[str, object]]]:
    constraints: list[dict[str, object]] = []
    n = wanted
    if n < min_workers:
        constraints.append(
            {
                "constraint": "min",
                "change": min_workers - n,
                "unit": "workers",
                "limit": min_workers,
            }
        )
        n = min_workers
    if n > max_workers:
        constraints.append(
            {
                "constraint": "max",
                "change": max_workers - n,
                "unit": "workers",
                "limit": max_workers,
            }
        )
        n = max_workers
    if budget_cap is not None and n > budget_cap:
        constraints.append(
            {
                "constraint": "budget",
                "change": budget_cap - n,
                "unit": "workers",
                "limit": budget_cap,
            }
        )
        n = budget_cap
    return n, constraints


def hybrid_target_per_replica(
    floor: int, mean_service_s: float, terms: SloTerms, service_scv: float = 1.0
) -> float:
    """The rate trigger's target per replica under a hybrid floor (jobs/s): the most demand
    the floor carries within the SLO, divided by the floor. While the measured rate is at or
    under ``floor`` × this, an autoscaler with this target wants no more than the floor."""
    if floor <= 0:
        raise ValueError(f"floor must be >= 1, got {floor!r}")
    return capacity_at_slo(floor, mean_service_s, terms, service_scv) / floor


def met_probabilities(
    policy: ScalingPolicy,
    needs: Sequence[WindowNeed],
    workers: Sequence[int],
    dist: DemandDistribution,
    *,
    current_backlog: float,
    mean_service_s: float,
    service_scv: float,
    capacity: Callable[[int, SloTerms], float] | None = None,
) -> list[float]:
    """P(window i meets the SLO | ``workers[i]``) under the demand distribution, with the
    SLO terms each window was sized to (the drain term where it drains the backlog)."""
    terms = slo_terms_from_policy(policy, current_backlog)
    no_backlog = replace(terms, current_backlog=0.0)
    cap = capacity or capacity_fn(mean_service_s, service_scv)
    return [
        dist.cdf(i, cap(int(c), terms if w.drains_backlog else no_backlog))
        for i, (w, c) in enumerate(zip(needs, workers, strict=True))
    ]
