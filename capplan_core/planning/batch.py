"""Plan many queues in one process: the per-queue pipeline without the orchestrator.

:func:`plan_one` runs one policy's stages (:mod:`capplan_core.planning.pipeline`, the same
functions the per-queue flow runs as tasks) in pipeline order — collect → clean + data quality
→ forecast → pool state → plan → simulate → decide (re-plan until confident) — and returns a
:class:`~capplan_core.planning.pipeline.QueueOutcome` that says how far it got: ``planned``
(with its decision), ``skipped`` (the pipeline's reason) or ``failed`` (the stage and the
error, named).
:func:`plan_many` runs it over a batch, one queue at a time, so one queue's failure never
touches another, and reports progress after each queue.

The results are the ones the stage-by-stage flow computes (same functions, same seeds): the
batched Prefect task (``tasks/batch.py``) and the benchmark's no-orchestrator baseline both
call this. The I/O around it — reading rows, the scaler's live count, storing — is passed in
as plain callables, so nothing here knows about Prefect, the store or a scaler.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import datetime

from capplan_core.forecast import ForecastResult
from capplan_core.planning import pipeline
from capplan_core.planning.decide import SimulateFn, plan_and_prove
from capplan_core.planning.pipeline import (
    LiveCount,
    NoRowsReason,
    QueueOutcome,
    ReadRows,
)
from capplan_core.planning.pool_state import QueueState
from capplan_core.planning.shared_pipeline import plan_shared
from capplan_core.policy import ScalingPolicy
from capplan_core.quality import Assessment
from capplan_core.simulation import simulate

__all__ = ["QueueOutcome", "chunk_size_for", "chunked", "plan_many", "plan_one"]

# (queues done, queues in the batch, the outcome just finished)
Progress = Callable[[int, int, QueueOutcome], None]


class _Stages:
    """Times the stages of one queue and remembers which one was running."""

    def __init__(self) -> None:
        self.current = "collect"
        self.seconds: dict[str, float] = {}
        self._t0 = time.perf_counter()

    def enter(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[self.current] = round(now - self._t0, 4)
        self.current, self._t0 = stage, now

    def done(self) -> dict[str, float]:
        self.enter("done")
        return self.seconds


def plan_one(
    policy: ScalingPolicy,
    read_rows: ReadRows,
    now: datetime,
    *,
    from_file: bool = False,
    live_count: LiveCount | None = None,
    simulate_fn: SimulateFn = simulate,
    engine: str = "auto",
    no_rows_reason: Callable[[ScalingPolicy, datetime], str] | None = None,
) -> QueueOutcome:
    """One queue's pipeline, its failure caught and named (the stage and the error).

    ``from_file``: offline planning; an empty read is then cleaned (and fails quality) as the
    flow does, instead of being skipped as "no metrics collected". ``live_count``: the scaler's
    count the plan starts from (planning live); None plans from the measured count.
    """
    stages = _Stages()
    assessment: Assessment | None = None
    fc: ForecastResult | None = None
    state: QueueState | None = None
    try:
        if policy.shared is not None:  # every queue of the pool, then the pool
            stages.enter("shared-pool")
            shared = plan_shared(
                policy,
                read_rows,
                now,
                from_file=from_file,
                live_count=live_count,
                simulate_fn=simulate_fn,
                no_rows_reason=no_rows_reason,
            )
            return replace(shared, stage_seconds=stages.done())
        rows = read_rows(policy)
        skip = pipeline.nothing_collected(
            rows, policy, now, from_file=from_file, no_rows_reason=no_rows_reason
        )
        if skip is not None:
            return QueueOutcome(policy, "skipped", reason=skip, stage_seconds=stages.done())
        stages.enter("clean")
        assessment = pipeline.clean(rows, policy, now)
        skip = pipeline.quality_skip(assessment, policy)
        if skip is not None:
            return QueueOutcome(
                policy, "skipped", assessment=assessment, reason=skip, stage_seconds=stages.done()
            )
        stages.enter("forecast")
        got = pipeline.forecast(assessment, policy)
        if isinstance(got, str):
            return QueueOutcome(
                policy, "skipped", assessment=assessment, reason=got, stage_seconds=stages.done()
            )
        fc = got
        stages.enter("pool-state")
        state = pipeline.pool(assessment, policy, live_count)
        stages.enter("plan-simulate-decide")
        decision = plan_and_prove(
            policy,
            fc,
            state,
            now=now,
            data_quality_warning=bool(assessment.quality.warnings),
            engine=engine,
            simulate_fn=simulate_fn,
        )
    except Exception as err:  # isolate the queue: the batch goes on
        failed = stages.current
        return QueueOutcome(
            policy,
            "failed",
            assessment=assessment,
            forecast=fc,
            state=state,
            failed_stage=failed,
            error=f"{type(err).__name__}: {err}",
            exception=err,
            stage_seconds=stages.done(),
        )
    return QueueOutcome(
        policy,
        "planned",
        assessment=assessment,
        forecast=fc,
        state=state,
        decision=decision,
        stage_seconds=stages.done(),
    )


def plan_many(
    policies: Iterable[ScalingPolicy],
    read_rows: ReadRows,
    now: datetime,
    *,
    progress: Progress | None = None,
    from_file: bool = False,
    live_count: LiveCount | None = None,
    simulate_fn: SimulateFn = simulate,
    engine: str = "auto",
    no_rows_reason: NoRowsReason | None = None,
) -> Iterator[QueueOutcome]:
    """:func:`plan_one` for each policy in order, yielding each outcome as it is ready (so a
    caller can store it at once); ``progress(done, total, outcome)`` after each queue."""
    batch = list(policies)
    for i, policy in enumerate(batch, start=1):
        outcome = plan_one(
            policy,
            read_rows,
            now,
            from_file=from_file,
            live_count=live_count,
            simulate_fn=simulate_fn,
            engine=engine,
            no_rows_reason=no_rows_reason,
        )
        if progress is not None:
            progress(i, len(batch), outcome)
        yield outcome


def chunked(items: list[ScalingPolicy], size: int) -> list[list[ScalingPolicy]]:
    """Consecutive chunks of at most ``size`` items (the last may be shorter)."""
    if size < 1:
        raise ValueError(f"chunk size must be >= 1, got {size}")
    return [items[i : i + size] for i in range(0, len(items), size)]


def chunk_size_for(
    n_queues: int, *, max_chunk: int = 25, min_chunks: int = 1, workers: int = 2
) -> int:
    """Queues per task run: at most ``max_chunk``, and small enough that ``workers`` task
    runs have about the same work each (at least ``min_chunks`` chunks)."""
    if n_queues <= 0:
        return 1
    chunks = max(min_chunks, workers, -(-n_queues // max_chunk))
    return max(1, -(-n_queues // chunks))
