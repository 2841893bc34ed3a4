"""What a simulation takes in (``SimScenario``) and what it gives back (``SimulationSummary``).

The model (docs/CONTRACTS.md, "simulation"): jobs arrive as a non-homogeneous Poisson process
whose rate is piecewise constant per window and follows one demand path per replication
(replication i uses path ``i % n_paths``); FCFS queue, many workers; the plan's ``steps`` set the
worker target at their times (capped by ``quota_workers``); a new worker serves only after
``startup_s``; on scale-down a busy worker finishes its job first; workers fail after an
exponential time up (mean ``mtbf_s``), are down for ``restart_s`` and the job they held goes back
to the head of the queue; ``initial_backlog`` jobs wait at time 0.

A window fails its SLO when more than ``1 − slo_wait_quantile`` of the jobs arriving in it wait
longer than ``slo_wait_s`` (i.e. their empirical wait quantile exceeds it), or when the backlog
(jobs waiting, not in service) exceeds ``slo_max_backlog`` at any time in it.

Shared pools: ``classes`` (``classes.JobClass``) lists several queues served in the
``discipline``'s order, each with its own demand, service and SLO (a window also fails when a
class misses its own); build such a scenario with ``class_scenario``. Without classes
the model above is unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np

from capplan_core.simulation.class_summary import ClassSummary
from capplan_core.simulation.classes import JobClass, check_classes, mixed_service, total_rates

ServiceKind = Literal["exponential", "lognormal", "empirical"]
EngineName = Literal["auto", "simpy", "fast", "fluid"]
ENGINES: tuple[str, ...] = ("auto", "simpy", "fast", "fluid")
SERVICE_KINDS: tuple[str, ...] = ("exponential", "lognormal", "empirical")


def _finite(name: str, value: float, *, low: float, low_open: bool = False) -> None:
    ok = math.isfinite(value) and (value > low if low_open else value >= low)
    if not ok:
        op = ">" if low_open else ">="
        raise ValueError(f"{name} must be a finite number {op} {low:g} (got {value!r})")


@dataclass(frozen=True)
class SimScenario:
    """One simulation scenario. Times in seconds from the start, rates in jobs/s.

    ``arrival_times_s`` / ``service_times_s`` inject deterministic inputs (every replication
    then uses them; failures stay random): ``service_times_s`` holds the ``initial_backlog``
    jobs first, then one per arrival. ``warmup_s`` drops everything before it from the results
    (jobs arriving earlier, windows ending earlier), for steady-state estimates.
    """

    horizon_s: float
    window_s: float
    rates_per_s: np.ndarray
    initial_workers: int
    steps: list[tuple[float, int]] = field(default_factory=list)
    mean_service_s: float = 1.0
    service_scv: float = 1.0
    service_kind: ServiceKind = "exponential"
    service_samples_s: np.ndarray | None = None
    startup_s: float = 0.0
    mtbf_s: float | None = None
    restart_s: float = 0.0
    quota_workers: int | None = None
    initial_backlog: int = 0
    slo_wait_s: float | None = None
    slo_wait_quantile: float = 0.95
    slo_max_backlog: float | None = None
    warmup_s: float = 0.0
    arrival_times_s: np.ndarray | None = None
    service_times_s: np.ndarray | None = None
    classes: tuple[JobClass, ...] = ()
    discipline: str = "strict"

    def __post_init__(self) -> None:
        _finite("horizon_s", self.horizon_s, low=0, low_open=True)
        _finite("window_s", self.window_s, low=0, low_open=True)
        rates = np.asarray(self.rates_per_s, dtype=float)
        if rates.ndim == 1:
            rates = rates[None, :]
        if rates.ndim != 2 or rates.shape[1] != self.n_windows or rates.shape[0] < 1:
            raise ValueError(
                f"rates_per_s must have shape (n_paths, {self.n_windows}) or "
                f"({self.n_windows},) (got {np.shape(self.rates_per_s)})"
            )
        if not np.all(np.isfinite(rates)) or np.any(rates < 0):
            raise ValueError("rates_per_s must be finite and >= 0")
        object.__setattr__(self, "rates_per_s", rates)
        _check_int("initial_workers", self.initial_workers, low=0)
        _check_int("initial_backlog", self.initial_backlog, low=0)
        for i, (t_s, target) in enumerate(self.steps):
            _finite(f"steps[{i}] time_s", float(t_s), low=0)
            _check_int(f"steps[{i}] workers", target, low=0)
        object.__setattr__(
            self, "steps", sorted(((float(t), int(w)) for t, w in self.steps), key=lambda s: s[0])
        )
        _finite("mean_service_s", self.mean_service_s, low=0, low_open=True)
        _finite("service_scv", self.service_scv, low=0)
        if self.service_kind not in SERVICE_KINDS:
            raise ValueError(
                f"service_kind must be one of {SERVICE_KINDS} (got {self.service_kind!r})"
            )
        if self.service_kind == "empirical":
            s = self.service_samples_s
            if (
                s is None
                or np.size(s) == 0
                or not np.all(np.isfinite(s))
                or np.any(np.asarray(s) <= 0)
            ):
                raise ValueError(
                    "service_kind='empirical' needs service_samples_s: a non-empty "
                    "array of finite times > 0"
                )
        _finite("startup_s", self.startup_s, low=0)
        if self.mtbf_s is not None:
            _finite("mtbf_s", self.mtbf_s, low=0, low_open=True)
        _finite("restart_s", self.restart_s, low=0)
        if self.quota_workers is not None:
            _check_int("quota_workers", self.quota_workers, low=0)
        if self.slo_wait_s is not None:
            _finite("slo_wait_s", self.slo_wait_s, low=0)
        if not 0.0 < self.slo_wait_quantile < 1.0:
            raise ValueError(
                f"slo_wait_quantile must be in (0, 1) (got {self.slo_wait_quantile!r})"
            )
        if self.slo_max_backlog is not None:
            _finite("slo_max_backlog", self.slo_max_backlog, low=0)
        _finite("warmup_s", self.warmup_s, low=0)
        if self.warmup_s >= self.horizon_s:
            raise ValueError(f"warmup_s must be < horizon_s (got {self.warmup_s!r})")
        self._check_injection()
        object.__setattr__(self, "classes", tuple(self.classes))
        check_classes(
            self.classes,
            self.discipline,
            self.n_windows,
            self.rates_per_s,
            self.initial_backlog,
            self.arrival_times_s is not None,
        )

    def _check_injection(self) -> None:
        a, s = self.arrival_times_s, self.service_times_s
        if (a is None) != (s is None):
            raise ValueError("arrival_times_s and service_times_s must be given together")
        if a is None or s is None:
            return
        a = np.asarray(a, dtype=float)
        s = np.asarray(s, dtype=float)
        outside = a.size > 0 and (a[0] < 0 or a[-1] >= self.horizon_s)
        if a.ndim != 1 or np.any(np.diff(a) < 0) or outside:
            raise ValueError("arrival_times_s must be sorted times in [0, horizon_s)")
        if (
            s.shape != (self.initial_backlog + a.size,)
            or not np.all(np.isfinite(s))
            or np.any(s < 0)
        ):
            raise ValueError(
                f"service_times_s must hold {self.initial_backlog + a.size} finite "
                "times >= 0 (initial_backlog jobs first, then one per arrival)"
            )
        object.__setattr__(self, "arrival_times_s", a)
        object.__setattr__(self, "service_times_s", s)

    @property
    def n_windows(self) -> int:
        return max(1, math.ceil(self.horizon_s / self.window_s - 1e-9))

    @cached_property
    def window_edges_s(self) -> np.ndarray:
        """Window boundaries (n_windows + 1,), the last one clipped to the horizon."""
        edges = np.arange(self.n_windows + 1, dtype=float) * self.window_s
        edges[-1] = self.horizon_s
        return edges

    def effective_target(self, workers: int) -> int:
        """A target worker count after the quota cap."""
        return workers if self.quota_workers is None else min(workers, self.quota_workers)

    @cached_property
    def max_slots(self) -> int:
        """Upper bound on workers alive at once (retiring ones included)."""
        total, current = (
            self.effective_target(self.initial_workers),
            self.effective_target(self.initial_workers),
        )
        for _, w in self.steps:
            w = self.effective_target(w)
            total += max(0, w - current)
            current = w
        return max(1, total)

    @property
    def service_moments(self) -> tuple[float, float]:
        """Mean (s) and squared coefficient of variation of the service time distribution."""
        if self.service_kind == "exponential":
            return self.mean_service_s, 1.0
        if self.service_kind == "lognormal":
            return self.mean_service_s, self.service_scv
        samples = np.asarray(self.service_samples_s, dtype=float)
        mean = float(samples.mean())
        return mean, float(samples.var() / mean**2)

    @property
    def stop_s(self) -> float:
        """The run goes on past the horizon (no new arrivals) to learn the last jobs' waits,
        up to this time; jobs not started by then are counted with the wait they had so far."""
        return 2.0 * self.horizon_s

    @cached_property
    def constant_workers(self) -> bool:
        """No steps that change the pool and no failures: the "next free worker" shortcut holds."""
        c0 = self.effective_target(self.initial_workers)
        return (
            self.mtbf_s is None
            and c0 >= 1
            and all(self.effective_target(w) == c0 for _, w in self.steps)
        )


def _check_int(name: str, value: object, *, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{name} must be an integer >= {low} (got {value!r})")


@dataclass(frozen=True)
class SimulationSummary:
    """Results over all replications (times in s, backlog in jobs).

    ``slo_achievement_rate`` is the share of replications meeting the SLO in every window, with
    a Wilson 95% interval. Wait statistics are per-replication values averaged over
    replications; their ``_ci95`` are t intervals over replications (over batch means of the
    single run when there is one replication). ``max_backlog`` is the mean over replications of
    each one's largest backlog; ``utilization_range`` the lowest and highest per-window mean
    utilisation (busy / ready worker time). ``classes`` holds each class's own waits for a
    shared pool (``class_stats.ClassSummary``; empty without classes).

    ``approximate`` is True when the fluid level answered (stationary formulas inside time
    steps, no job-level Monte Carlo): then the wait ``_ci95`` are None, since the spread over
    replications would miss the model's own error and, on a stationary scenario, be zero-wide.
    """

    slo_achievement_rate: float
    achievement_ci95: tuple[float, float]
    max_backlog: float
    p95_wait_s: float
    p95_wait_s_ci95: tuple[float, float] | None
    mean_wait_s: float
    mean_wait_s_ci95: tuple[float, float] | None
    wait_probability: float
    wait_probability_ci95: tuple[float, float] | None
    utilization_range: tuple[float, float]
    window_failure_rate: np.ndarray
    window_utilization: np.ndarray
    window_max_backlog: np.ndarray
    jobs: int
    engine: str
    replications: int
    approximate: bool = False
    classes: tuple[ClassSummary, ...] = ()


def class_scenario(
    classes: list[JobClass] | tuple[JobClass, ...],
    *,
    discipline: str = "strict",
    **scenario_fields: Any,
) -> SimScenario:
    """A ``SimScenario`` for a shared pool: ``rates_per_s`` and ``initial_backlog`` are the
    classes' totals, the pool-level service fields the mix's (``classes.mixed_service``)."""
    classes = tuple(classes)
    if not classes:
        raise ValueError("classes must list at least one JobClass")
    horizon_s, window_s = scenario_fields.get("horizon_s"), scenario_fields.get("window_s")
    if isinstance(horizon_s, int | float) and isinstance(window_s, int | float) and window_s > 0:
        n_windows = max(1, math.ceil(horizon_s / window_s - 1e-9))
        for c in classes:
            if c.rates_per_s.shape[1] != n_windows:
                raise ValueError(
                    f"class {c.name!r}: rates_per_s needs {n_windows} windows "
                    f"(got {c.rates_per_s.shape[1]})"
                )
    mean_s, scv = mixed_service(classes)
    return SimScenario(
        rates_per_s=total_rates(classes),
        classes=classes,
        discipline=discipline,
        initial_backlog=sum(int(c.initial_backlog) for c in classes),
        mean_service_s=mean_s,
        service_scv=scv,
        service_kind="exponential" if scv == 1.0 else "lognormal",
        **scenario_fields,
    )
