"""The compressed scenario of the closed loop: its numbers, its policy and its history.

The load steps from ``low_rate_per_s`` to ``high_rate_per_s`` at a minute boundary at least
``step_lead_s`` ahead. The store gets ``history_days`` earlier days of 1-minute rows with the
same step at the same time of day, so a seasonal forecast sees it coming whatever second of
the minute the loop starts at:

* the rows start two hours before ``history_days`` ago, so the series never begins right at
  a step (the cleaning stage flags a lone low point before a step as an outlier, and a series
  that loses its first point is one window short of whole days);
* four days, not three: the forecaster's anomaly check compares each window with the same
  slot on the other days and needs at least three whole days, which three days of history
  give only at the exact minute the loop started;
* the step's time of day wraps at midnight (a step at 23:55 lasts into the next day).

With ``low_priority_rate_per_s`` > 0 the pool is shared (docs/shared-pools.md): the workers
run ``rq worker Q Q_low`` and take Q's jobs first; Q_low gets a steady load of its own, with
its own SLO, and its own history (the same rate every day).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

DAY = timedelta(days=1)


@dataclass(frozen=True)
class LoopSpec:
    """The compressed scenario (rates in jobs/s, times in seconds)."""

    job_s: float = 0.5
    low_rate_per_s: float = 2.0
    high_rate_per_s: float = 8.0
    numprocs: int = 8
    start_workers: int = 2
    step_lead_s: float = 60.0  # the step is the first minute boundary at least this far ahead
    after_step_s: float = 40.0
    settle_s: float = 5.0  # waits are measured for jobs enqueued this long after the step on
    collect_every_s: float = 5.0
    plan_every_s: float = 15.0
    apply_every_s: float = 1.0  # the loop's apply-due sweep: steps are applied at their time
    history_days: int = 4
    history_lead_h: float = 2.0  # the history starts this long before history_days ago
    high_minutes: int = 15  # how long the step lasts on the earlier days
    slo_wait_p95_s: float = 2.0
    startup_s: float = 30.0
    replications: int = 100
    seed: int = 7
    #: a second queue the same workers serve after the first (strict order); 0: none
    low_priority_rate_per_s: float = 0.0
    low_priority_slo_wait_p95_s: float = 10.0

    @property
    def shared(self) -> bool:
        return self.low_priority_rate_per_s > 0


def low_priority_queue(queue: str) -> str:
    """The name of the queue the pool serves after ``queue`` (it carries the loop's tid)."""
    return f"{queue}_low"


def step_time(spec: LoopSpec, now: datetime) -> datetime:
    """The first minute boundary at least ``spec.step_lead_s`` after ``now``."""
    return (now + timedelta(seconds=spec.step_lead_s + 59.999)).replace(second=0, microsecond=0)


def live_policy(spec: LoopSpec, queue: str, group: str, redis_url: str) -> dict[str, Any]:
    """The policy of the compressed loop (a ``policies:`` list item)."""
    return {
        "name": f"live-{queue}",
        "queue": queue,
        "mode": "auto",
        "target": {"kind": "supervisor", "name": group},
        "source": {"kind": "rq", "redis_url": redis_url},
        "slo": {"wait_p95_seconds": spec.slo_wait_p95_s},
        "scaling": {
            "min_workers": spec.start_workers,
            "max_workers": spec.numprocs,
            "max_step": spec.numprocs,
            "cooldown_seconds": 0,
            "safety_margin": 0.2,
            "startup_seconds": spec.startup_s,
            "confidence_threshold": 0.8,
            "scale_down_windows": 30,
            "auto_max_change": spec.numprocs,
        },
        # seasonal naive: "the same as this time yesterday" is the scenario; with days of
        # 1-minute history (a 1440-step season) the rolling-origin choice of `auto` prefers a
        # moving average, which cannot see a step that happens once a day
        "forecast": {
            "model": "seasonal_naive",
            "horizon_hours": 0.25,
            "interval_minutes": 1,
            "seasonality": ["daily"],
        },
        "simulation": {"replications": spec.replications, "seed": spec.seed},
        **(
            {
                "shared": {
                    "discipline": "strict",
                    "queues": [
                        {"queue": queue},
                        {
                            "queue": low_priority_queue(queue),
                            "slo": {"wait_p95_seconds": spec.low_priority_slo_wait_p95_s},
                        },
                    ],
                }
            }
            if spec.shared
            else {}
        ),
    }


def backfill_rows(
    spec: LoopSpec,
    queue: str,
    step_at: datetime,
    until: datetime,
    *,
    rates_per_s: tuple[float, float] | None = None,
) -> list[dict[str, Any]]:
    """1-minute rows from ``history_days`` (plus ``history_lead_h``) before ``until`` up to
    it: the low rate, and the high rate for ``high_minutes`` from ``step_at``'s time of day
    on each earlier day (workers sized to it). ``rates_per_s`` (before, during the step)
    replaces the spec's rates: a shared pool's second queue has a steady rate."""
    low_rate, high_rate = rates_per_s or (spec.low_rate_per_s, spec.high_rate_per_s)
    start = (until - spec.history_days * DAY - timedelta(hours=spec.history_lead_h)).replace(
        second=0, microsecond=0
    )
    step_tod = step_at - step_at.replace(hour=0, minute=0, second=0, microsecond=0)
    rng = np.random.default_rng(spec.seed)
    rows, t = [], start
    while t < until:
        tod = t - t.replace(hour=0, minute=0, second=0, microsecond=0)
        high = (tod - step_tod) % DAY < timedelta(minutes=spec.high_minutes)
        rate = high_rate if high else low_rate
        rows.append(
            {
                "queue_name": queue,
                "recorded_at": t,
                "arrival_rate": max(0.0, rate * (1 + 0.03 * rng.standard_normal())),
                "service_rate": 1.0 / spec.job_s,
                "backlog": 0.0,
                "workers": float(6 if high else spec.start_workers),
                "extra": {
                    "service_time_p95": spec.job_s,
                    "service_time_scv": 0.02,
                    "source": "backfill",
                },
            }
        )
        t += timedelta(minutes=1)
    return rows
