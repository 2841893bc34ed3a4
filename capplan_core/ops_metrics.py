"""The planner's own operating numbers, computed from what the store holds (pure, no I/O).

``capplan exporter`` reads plans, steps, forecasts and metrics through the store and hands them
here; this module turns them into the numbers it serves (docs/operations.md):

- **the newest cycle** (:func:`newest_cycle`). The store keeps no cycle record: a
  ``capacity-plan`` run gives every plan it makes the same ``as_of``. A cycle is therefore the
  plans sharing the newest plan's ``as_of``, walked newest first and stopping at a queue seen
  twice (a re-run over the same data) or at a gap longer than ``max_gap_s`` between two plans.
  Its duration is the span from the first plan stored to the last: a lower bound of the run's
  wall time (the collect and forecast before the first plan are not in the store).
- **approval wait** (:func:`approval_waits`): ``decided_at - created_at`` of decided plans.
- **forecast error** (:func:`forecast_error`): the newest plan's forecast windows that have
  passed, against the mean ``arrival_rate`` recorded in each window: MAE (jobs/s) and MAPE
  (a ratio; windows whose observed rate is 0 are left out of MAPE only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

#: a cycle counts its plans as skipped, failed, or else planned
SKIPPED, FAILED = "skipped", "failed"
DECIDED = ("approved", "rejected", "expired")
AWAITING = "proposed"


@dataclass(frozen=True)
class PlanFact:
    """What the exporter needs of one stored plan (times are UTC-aware)."""

    id: int
    queue: str
    status: str
    created_at: datetime
    as_of: datetime | None
    decided_at: datetime | None = None


@dataclass(frozen=True)
class CycleSummary:
    """One planning cycle as derived from its plans (see the module docstring)."""

    as_of: datetime | None
    started_at: datetime
    finished_at: datetime
    planned: int
    skipped: int
    failed: int
    queues: frozenset[str]

    @property
    def duration_s(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def succeeded(self) -> bool:
        """A cycle succeeded when it stored at least one plan and none of them failed."""
        return self.failed == 0 and self.planned + self.skipped > 0


@dataclass(frozen=True)
class ForecastError:
    """Forecast against observed arrivals over the windows that have passed."""

    windows: int  # windows with at least one observation
    mae_per_s: float  # mean absolute error, jobs/s (NaN when windows == 0)
    mape_ratio: float  # mean |error| / observed over windows with observed > 0 (NaN if none)


def cycles(plans: Sequence[PlanFact], *, max_gap_s: float = 900.0) -> list[CycleSummary]:
    """Split plans into cycles, newest cycle first.

    ``plans`` may come in any order. A cycle is a run of plans, newest first, with one
    ``as_of``, no queue twice and no gap over ``max_gap_s`` seconds between neighbours.
    """
    if max_gap_s <= 0:
        raise ValueError(f"max_gap_s must be > 0, got {max_gap_s}")
    ordered = sorted(plans, key=lambda p: (p.created_at, p.id), reverse=True)
    out: list[CycleSummary] = []
    group: list[PlanFact] = []
    seen: set[str] = set()
    for p in ordered:
        if group and _starts_new_cycle(group, seen, p, max_gap_s):
            out.append(_summarise(group))
            group, seen = [], set()
        group.append(p)
        seen.add(p.queue)
    if group:
        out.append(_summarise(group))
    return out


def newest_cycle(plans: Sequence[PlanFact], *, max_gap_s: float = 900.0) -> CycleSummary | None:
    """The most recent cycle, or ``None`` when no plan is stored."""
    found = cycles(plans, max_gap_s=max_gap_s)
    return found[0] if found else None


def last_successful(found: Sequence[CycleSummary]) -> CycleSummary | None:
    """The newest cycle that succeeded (``found`` newest first, as :func:`cycles` gives)."""
    return next((c for c in found if c.succeeded), None)


def _starts_new_cycle(group: list[PlanFact], seen: set[str], p: PlanFact, max_gap_s: float) -> bool:
    last = group[-1]
    return (
        p.as_of != group[0].as_of
        or p.queue in seen
        or (last.created_at - p.created_at).total_seconds() > max_gap_s
    )


def _summarise(group: list[PlanFact]) -> CycleSummary:
    skipped = sum(p.status == SKIPPED for p in group)
    failed = sum(p.status == FAILED for p in group)
    return CycleSummary(
        as_of=group[0].as_of,
        started_at=min(p.created_at for p in group),
        finished_at=max(p.created_at for p in group),
        planned=len(group) - skipped - failed,
        skipped=skipped,
        failed=failed,
        queues=frozenset(p.queue for p in group),
    )


def missing_queues(cycle: CycleSummary | None, enabled_queues: set[str]) -> set[str]:
    """Enabled policies' queues the cycle stored no plan for (failed before storing, or not
    selected by that run's ``policies`` parameter)."""
    return set(enabled_queues) - (set(cycle.queues) if cycle else set())


def approval_waits(plans: Sequence[PlanFact]) -> dict[str, list[float]]:
    """Seconds from creation to decision of each decided plan, by decision.

    Rejected and expired are final; a plan with ``decided_at`` in any other status (approved,
    applied, superseded or failed after approval) was approved.
    """
    out: dict[str, list[float]] = {d: [] for d in DECIDED}
    for p in plans:
        if p.decided_at is not None:
            decision = p.status if p.status in out else "approved"
            out[decision].append(max(0.0, (p.decided_at - p.created_at).total_seconds()))
    return out


def oldest_awaiting_age_s(oldest_created_at: datetime | None, now: datetime) -> float:
    """Age in seconds of the oldest plan awaiting approval (0 when none waits)."""
    if oldest_created_at is None:
        return 0.0
    return max(0.0, (now - oldest_created_at).total_seconds())


def bucket_counts(values: Sequence[float], bounds: Sequence[float]) -> list[int]:
    """Cumulative counts per upper bound (Prometheus ``le`` buckets; ``+Inf`` last)."""
    import numpy as np

    if list(bounds) != sorted(bounds):
        raise ValueError(f"bucket bounds must be increasing, got {list(bounds)}")
    arr = np.asarray(values, dtype=float)
    return [int((arr <= b).sum()) for b in bounds] + [len(arr)]


def forecast_error(
    forecast: Sequence[tuple[datetime, float]],
    observed: Sequence[tuple[datetime, float]],
    now: datetime,
    *,
    interval_s: float | None = None,
) -> ForecastError:
    """Compare forecast windows that have passed with the arrival rate observed in them.

    ``forecast``: (window start, predicted jobs/s); ``observed``: (recorded_at, arrival jobs/s).
    A window ``[t, t + interval_s)`` counts once it has ended by ``now`` and holds at least one
    observation; its observed rate is their mean. ``interval_s`` defaults to the median spacing
    of the forecast times; a single-point forecast without ``interval_s`` compares nothing.
    """
    import numpy as np

    pts = sorted(forecast)
    if interval_s is None:
        if len(pts) < 2:
            return ForecastError(0, float("nan"), float("nan"))
        interval_s = float(np.median(np.diff([p[0].timestamp() for p in pts])))
    if interval_s <= 0:
        raise ValueError(f"interval_s must be > 0, got {interval_s}")
    obs_t = np.array([t.timestamp() for t, _ in observed], dtype=float)
    obs_v = np.array([v for _, v in observed], dtype=float)
    keep = np.isfinite(obs_v)
    obs_t, obs_v = obs_t[keep], obs_v[keep]
    errors, actual = [], []
    for start, predicted in pts:
        t0 = start.timestamp()
        if t0 + interval_s > now.timestamp():
            continue
        inside = (obs_t >= t0) & (obs_t < t0 + interval_s)
        if inside.any():
            mean_obs = float(obs_v[inside].mean())
            errors.append(abs(predicted - mean_obs))
            actual.append(mean_obs)
    if not errors:
        return ForecastError(0, float("nan"), float("nan"))
    err, act = np.array(errors), np.array(actual)
    positive = act > 0
    mape = float((err[positive] / act[positive]).mean()) if positive.any() else float("nan")
    return ForecastError(len(errors), float(err.mean()), mape)
