"""The per-queue pipeline, defined once: its stages, why a queue is skipped, and its outcome.

collect → clean + data quality → forecast → pool state → plan → simulate → decide. Each stage
is a function here (plan/simulate/decide are :mod:`capplan_core.planning.decide`'s); the
Prefect flow runs each as a task of its own (``flows/plan_queue.py`` through ``tasks/``),
and the batched path (:mod:`capplan_core.planning.batch`, ``plan-chunk`` task runs) calls the
same functions in a loop. A stage changes here, and both follow. A shared pool runs the
first stages per queue and plans the pool for all of them (:mod:`.shared_pipeline`).

A queue that cannot be planned is **skipped** with a reason (nothing collected, a failed
critical data-quality expectation, no usable history), and its current capacity is held.
The I/O around the stages — reading rows, the scaler's live count — is passed in as plain
callables, so nothing here knows about Prefect, the store or a scaler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import pandas as pd

from capplan_core.forecast import ForecastResult, NoHistoryError, forecast_queue
from capplan_core.planning.decide import Decision
from capplan_core.planning.pool_state import QueueState, pool_state
from capplan_core.policy import ScalingPolicy
from capplan_core.quality import Assessment, assess

Status = Literal["planned", "skipped", "failed"]
#: the forecast's interval levels every stage and artifact shows
FORECAST_LEVELS = (0.8, 0.95)

# (policy) -> rows of its queue (the metrics-file columns); an empty frame: nothing collected
ReadRows = Callable[[ScalingPolicy], pd.DataFrame]
# (policy, measured workers) -> (the scaler's live count, where it came from)
LiveCount = Callable[[ScalingPolicy, int], tuple[int, str]]
# (policy, now) -> why nothing was collected for its queue
NoRowsReason = Callable[[ScalingPolicy, datetime], str]


@dataclass(frozen=True)
class QueueOutcome:
    """How far one queue's pipeline got, with what each stage produced."""

    policy: ScalingPolicy
    status: Status
    assessment: Assessment | None = None
    forecast: ForecastResult | None = None
    state: QueueState | None = None
    decision: Decision | None = None
    reason: str | None = None  # why a skipped queue was not planned
    failed_stage: str | None = None  # the stage that raised, for a failed queue
    error: str | None = None  # "ErrorType: message", for a failed queue
    exception: BaseException | None = field(default=None, repr=False, compare=False)
    stage_seconds: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def queue(self) -> str:
        return self.policy.queue


# -- collect ----------------------------------------------------------------------------------
def nothing_collected(
    rows: pd.DataFrame,
    policy: ScalingPolicy,
    now: datetime,
    *,
    from_file: bool,
    no_rows_reason: NoRowsReason | None = None,
) -> str | None:
    """Why the queue is skipped before cleaning: planning from the store, no row was
    collected for it. A metrics file (offline) goes on to cleaning, whose report says what is
    missing."""
    if not rows.empty or from_file:
        return None
    return (
        no_rows_reason(policy, now)
        if no_rows_reason is not None
        else f"no metrics collected for queue {policy.queue}"
    )


# -- clean + data quality ---------------------------------------------------------------------
def clean(rows: pd.DataFrame, policy: ScalingPolicy, now: datetime) -> Assessment:
    """Rows cleaned to the planning interval, with the data-quality report."""
    return assess(rows, policy, now=now)


def quality_skip(assessment: Assessment, policy: ScalingPolicy) -> str | None:
    """Why the queue is skipped after cleaning (a failed critical expectation), or None."""
    if assessment.plannable:
        return None
    return assessment.quality.reason or f"no usable metrics for queue {policy.queue!r}"


# -- forecast ---------------------------------------------------------------------------------
def forecast(assessment: Assessment, policy: ScalingPolicy) -> ForecastResult | str:
    """The policy's forecast of the cleaned arrival rate (outliers excluded, the policy's
    simulation seed), or — no usable history — the reason the plan holds current capacity."""
    series = assessment.clean.series
    try:
        return forecast_queue(
            series["arrival_rate"],
            policy.forecast,
            queue=policy.queue,
            levels=FORECAST_LEVELS,
            exclude=series["outlier"].astype(bool),
            seed=policy.simulation.seed,
        )
    except NoHistoryError as err:
        return f"no usable history, holding current capacity: {err}"


# -- pool state -------------------------------------------------------------------------------
def pool(
    assessment: Assessment, policy: ScalingPolicy, live_count: LiveCount | None = None
) -> QueueState:
    """Workers, backlog and service time now, from the newest cleaned intervals; with
    ``live_count`` (planning live) the plan starts from the count the scaler reads, and the
    measured count is kept beside it."""
    state = pool_state(assessment.clean)
    if live_count is None:
        return state
    workers, source = live_count(policy, state.current_workers)
    return pool_state(assessment.clean, live_workers=workers, replica_source=source)
