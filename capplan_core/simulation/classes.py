"""Job classes of a shared pool: several queues served by one pool in a discipline's order.

A ``SimScenario`` with ``classes`` simulates a pool whose workers listen to several queues
(``rq worker high default low``, ``celery -Q high,low``, Sidekiq weights). Each class has its
own arrival rates (demand paths), service distribution, wait SLO and initial backlog. Disciplines
(a worker that frees up takes the oldest job of the class the discipline picks; a job in
service always finishes, i.e. non-preemptive):

- ``strict``: the first class (in ``classes`` order) with a job waiting (RQ's default order,
  Celery's priority steps);
- ``round_robin``: the first class with a job waiting after the class served last, cyclically
  (one pointer for the pool; RQ's round-robin dequeue strategy takes turns per worker, which
  is the same while the pool is saturated, the only time the order matters);
- ``weighted``: a class with a job waiting, at random with probability proportional to its
  ``weight`` (Sidekiq's weighted queues: a weighted random order of the queues, then the first
  non-empty one; for such an order, "the first non-empty one" is class j with probability
  w_j / Σ w over the non-empty classes). Draw d uses ``ReplicationInputs.pick_u[d mod n]``.

The scenario's own ``rates_per_s`` must be the classes' total (``scenario.class_scenario``
builds it); its pool-level fields (``mean_service_s``, ``service_scv``) then only describe the
mix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Discipline = Literal["strict", "round_robin", "weighted"]
DISCIPLINES: tuple[str, ...] = ("strict", "round_robin", "weighted")
DISCIPLINE_CODES = {"strict": 0, "round_robin": 1, "weighted": 2}
SERVICE_KINDS: tuple[str, ...] = ("exponential", "lognormal", "empirical")


@dataclass(frozen=True)
class JobClass:
    """One queue of a shared pool. Rates in jobs/s per window (``(n_paths, n_windows)`` or
    ``(n_windows,)``), times in s. A window fails this class's SLO when more than
    ``1 − slo_wait_quantile`` of its jobs arriving in it wait longer than ``slo_wait_s``."""

    name: str
    rates_per_s: np.ndarray
    mean_service_s: float = 1.0
    service_scv: float = 1.0
    service_kind: str = "exponential"
    service_samples_s: np.ndarray | None = None
    slo_wait_s: float | None = None
    slo_wait_quantile: float = 0.95
    weight: float = 1.0
    initial_backlog: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"JobClass.name must be a non-empty string (got {self.name!r})")
        where = f"class {self.name!r}"
        rates = np.asarray(self.rates_per_s, dtype=float)
        if rates.ndim == 1:
            rates = rates[None, :]
        if rates.ndim != 2 or rates.shape[0] < 1 or rates.shape[1] < 1:
            raise ValueError(
                f"{where}: rates_per_s must have shape (n_paths, n_windows) or "
                f"(n_windows,) (got {np.shape(self.rates_per_s)})"
            )
        if not np.all(np.isfinite(rates)) or np.any(rates < 0):
            raise ValueError(f"{where}: rates_per_s must be finite and >= 0")
        object.__setattr__(self, "rates_per_s", rates)
        _positive(f"{where}: mean_service_s", self.mean_service_s)
        if not math.isfinite(self.service_scv) or self.service_scv < 0:
            raise ValueError(
                f"{where}: service_scv must be finite and >= 0 (got {self.service_scv!r})"
            )
        if self.service_kind not in SERVICE_KINDS:
            raise ValueError(
                f"{where}: service_kind must be one of {SERVICE_KINDS} (got {self.service_kind!r})"
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
                    f"{where}: service_kind='empirical' needs service_samples_s: "
                    "a non-empty array of finite times > 0"
                )
        if self.slo_wait_s is not None and (
            not math.isfinite(self.slo_wait_s) or self.slo_wait_s < 0
        ):
            raise ValueError(
                f"{where}: slo_wait_s must be finite and >= 0 (got {self.slo_wait_s!r})"
            )
        if not 0.0 < self.slo_wait_quantile < 1.0:
            raise ValueError(
                f"{where}: slo_wait_quantile must be in (0, 1) (got {self.slo_wait_quantile!r})"
            )
        _positive(f"{where}: weight", self.weight)
        b = self.initial_backlog
        if isinstance(b, bool) or not isinstance(b, int | np.integer) or b < 0:
            raise ValueError(f"{where}: initial_backlog must be an integer >= 0 (got {b!r})")

    @property
    def service_moments(self) -> tuple[float, float]:
        """Mean (s) and squared coefficient of variation of this class's service time."""
        if self.service_kind == "exponential":
            return self.mean_service_s, 1.0
        if self.service_kind == "lognormal":
            return self.mean_service_s, self.service_scv
        samples = np.asarray(self.service_samples_s, dtype=float)
        mean = float(samples.mean())
        return mean, float(samples.var() / mean**2)


def _positive(name: str, value: float) -> None:
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0 (got {value!r})")


def check_classes(
    classes: Sequence[JobClass],
    discipline: str,
    n_windows: int,
    rates_per_s: np.ndarray,
    initial_backlog: int,
    injected: bool,
) -> None:
    """Validate a scenario's classes against its other fields (called by ``SimScenario``)."""
    if discipline not in DISCIPLINES:
        raise ValueError(f"discipline must be one of {DISCIPLINES} (got {discipline!r})")
    if not classes:
        return
    names = [c.name for c in classes]
    if len(set(names)) != len(names):
        raise ValueError(f"class names must be unique (got {names})")
    n_paths = {c.rates_per_s.shape[0] for c in classes} - {1}
    if len(n_paths) > 1:
        raise ValueError("every class needs the same number of demand paths, or one")
    for c in classes:
        if c.rates_per_s.shape[1] != n_windows:
            raise ValueError(
                f"class {c.name!r}: rates_per_s needs {n_windows} windows "
                f"(got {c.rates_per_s.shape[1]})"
            )
    if injected:
        raise ValueError("arrival_times_s/service_times_s cannot be injected with classes")
    total = total_rates(classes)
    if rates_per_s.shape != total.shape or not np.allclose(
        rates_per_s, total, rtol=1e-9, atol=1e-12
    ):
        raise ValueError(
            "rates_per_s must be the sum of the classes' rates_per_s "
            "(use class_scenario to build it)"
        )
    backlog = sum(int(c.initial_backlog) for c in classes)
    if initial_backlog != backlog:
        raise ValueError(
            f"initial_backlog must be the classes' total {backlog} (got {initial_backlog})"
        )


def total_rates(classes: Sequence[JobClass]) -> np.ndarray:
    """The pool's demand paths: the classes' rates summed (paths broadcast)."""
    n_paths = max(c.rates_per_s.shape[0] for c in classes)
    return sum(
        (np.broadcast_to(c.rates_per_s, (n_paths, c.rates_per_s.shape[1])) for c in classes),
        np.zeros((n_paths, classes[0].rates_per_s.shape[1])),
    )


def mixed_service(classes: Sequence[JobClass]) -> tuple[float, float]:
    """Mean (s) and SCV of the service time of a job drawn from the mix (weighted by the
    classes' mean arrival rates; equal weights when nothing arrives)."""
    lam = np.array([float(c.rates_per_s.mean()) for c in classes])
    p = lam / lam.sum() if lam.sum() > 0 else np.full(len(classes), 1.0 / len(classes))
    m = np.array([c.service_moments[0] for c in classes])
    scv = np.array([c.service_moments[1] for c in classes])
    mean = float(p @ m)
    second = float(p @ (m * m * (1.0 + scv)))
    return mean, max(0.0, second / mean**2 - 1.0)
