"""What a shared-pool simulation reports per class (``SimulationSummary.classes``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClassSummary:
    """One class of a shared pool over all replications (times in s).

    ``wait_quantile_s`` is the wait at ``wait_quantile`` (the class's SLO quantile);
    ``late_share`` the share of jobs waiting longer than ``slo_wait_s`` (None without an SLO);
    ``slo_achievement_rate`` the share of replications in which the class met its SLO in every
    judged window. Point values are means over replications; ``_ci95`` are 95% t intervals
    (None when there is no spread to measure)."""

    name: str
    jobs: int
    slo_wait_s: float | None
    wait_quantile: float
    mean_wait_s: float
    mean_wait_s_ci95: tuple[float, float] | None
    wait_probability: float
    wait_probability_ci95: tuple[float, float] | None
    wait_quantile_s: float
    wait_quantile_s_ci95: tuple[float, float] | None
    late_share: float | None
    late_share_ci95: tuple[float, float] | None
    slo_achievement_rate: float
