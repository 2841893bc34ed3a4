"""One task run plans a chunk of queues: the per-queue stages of many queues per task run.

``plan-chunk`` runs :func:`capplan_core.planning.batch.plan_many` over its queues — collect,
clean + data quality, forecast, pool state, plan → simulate → decide — then stores each
queue's plan (or its skip) and publishes that queue's artifacts, one queue at a time. A queue
that fails is recorded as failed with the stage and the error named, and the chunk goes on;
only a store failure fails the task run (it is retried; storing is keyed by flow run + queue,
so a retry writes nothing twice).

The task run's name lists its queues, its result has one entry per queue, and each queue keeps
its artifacts (``data-quality-<queue>``, ``forecast-table-<queue>``, ``plan-<queue>``,
``simulation-<queue>``), so every queue's stages stay visible while the cycle makes one task
run per chunk instead of a dozen per queue. Chunks run on the flow's task runner: threads, a
``ProcessPoolTaskRunner``, or a Dask cluster through prefect-dask's ``DaskTaskRunner``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from prefect import get_run_logger
from prefect.runtime import task_run

from capplan_app.bootstrap import plan_store
from capplan_app.runtime import limit_blas_threads
from capplan_core.metrics.history import no_metrics_reason
from capplan_core.planning.batch import plan_many
from capplan_core.planning.pipeline import QueueOutcome
from capplan_core.planning.queue_result import QueueResult
from capplan_core.policy import ScalingPolicy
from tasks.artifacts import publish_forecast, publish_plan, publish_quality
from tasks.common import capplan_io_task
from tasks.planning import audited_live_count
from tasks.stages import preview_plan, rows_reader, store_plan, store_skipped
from tasks.summary import plan_view

NAME_LIMIT = 300  # characters of queue names in a task run's name


def chunk_run_name() -> str:
    """``plan-chunk-<n>: q1,q2,…`` — the queues this task run plans."""
    params = task_run.parameters
    names = ",".join(p.queue for p in params.get("policies", []))
    if len(names) > NAME_LIMIT:
        names = names[:NAME_LIMIT].rsplit(",", 1)[0] + ",…"
    return f"plan-chunk-{params.get('index', 0)}: {names}"


def _failed(outcome: QueueOutcome) -> dict[str, Any]:
    p = outcome.policy
    return QueueResult.failure(
        queue=p.queue,
        policy=p.name,
        mode=p.mode.value,
        failed_stage=outcome.failed_stage,
        error=f"{outcome.failed_stage}: {outcome.error}",
    ).to_json()


def store_outcome(
    outcome: QueueOutcome,
    as_of: datetime,
    *,
    version: int | None = None,
    save: bool = True,
    approval: str = "none",
    forecast_artifacts: bool = True,
) -> dict[str, Any]:
    """Store one queue's plan (or skip) under its policy ``version`` and publish its
    artifacts; the plan as users see it. ``save=False``: a preview that writes nothing."""
    p = outcome.policy
    if outcome.status == "failed":
        return _failed(outcome)
    assessment = outcome.assessment
    quality = assessment.quality.as_dict() if assessment is not None else None
    if assessment is not None:
        publish_quality.fn(assessment)
    if outcome.status == "skipped":
        reason = outcome.reason or "not planned"
        if not save:
            return preview_plan.fn(p, None, None, None, assessment, as_of, skipped_reason=reason)
        plan_id = store_skipped.fn(p, reason, as_of, quality, policy_version=version)
        return plan_view(plan_store().get_plan(plan_id))
    assert outcome.decision is not None and outcome.state is not None
    assert outcome.forecast is not None and assessment is not None
    if forecast_artifacts:
        publish_forecast.fn(assessment, outcome.forecast)
    planned = (p, outcome.decision, outcome.state, outcome.forecast, assessment, as_of)
    if not save:
        summary = preview_plan.fn(*planned, policy_version=version)
    else:
        plan_id = store_plan.fn(*planned, policy_version=version)
        summary = plan_view(
            plan_store().get_plan(plan_id),
            note=(
                "plan only (approval='none')" if approval == "none" else "advisory: never executed"
            ),
        )
    publish_plan.fn(summary, summary.get("details", {}), summary.get("explanation", []))
    return summary


@capplan_io_task(name="plan-chunk", task_run_name=chunk_run_name)
def plan_chunk(
    policies: list[ScalingPolicy],
    metrics_path: str | None,
    as_of: datetime,
    index: int = 0,
    versions: list[int | None] | None = None,
    save: bool = True,
    approval: str = "none",
    forecast_artifacts: bool = True,
) -> list[dict[str, Any]]:
    """Plan, store (or preview) and publish each queue of the chunk; one result per queue,
    in order. Only queues that need no approval in this run are batched (advisory, or
    ``approval='none'``): a queue that may pause for a person keeps its own plan-queue run."""
    logger = get_run_logger()
    limit_blas_threads()  # tiny fits: one BLAS thread per planning process (capplan_app.runtime)
    live = not metrics_path
    vers = versions or [None] * len(policies)
    results: list[dict[str, Any]] = []
    outcomes = plan_many(
        policies,
        rows_reader(metrics_path, policies, as_of),
        as_of,
        from_file=not live,
        live_count=audited_live_count if live else None,
        no_rows_reason=no_metrics_reason,
    )
    for outcome, version in zip(outcomes, vers, strict=True):
        result = store_outcome(
            outcome,
            as_of,
            version=version,
            save=save,
            approval=approval,
            forecast_artifacts=forecast_artifacts,
        )
        result["stage_seconds"] = outcome.stage_seconds
        if outcome.status == "failed":
            logger.error(
                "queue %s failed at %s: %s", outcome.queue, outcome.failed_stage, outcome.error
            )
        elif outcome.status == "skipped":
            logger.warning("queue %s not planned: %s", outcome.queue, outcome.reason)
        else:
            logger.info(
                "queue %s planned: %s → %s workers, confidence %.2f",
                outcome.queue,
                result.get("current_workers"),
                result.get("target_workers"),
                result.get("confidence") or 0.0,
            )
        results.append(result)
    return results


# -- the fan-out over chunks, called by the flow ---------------------------------------------
ProgressListener = Callable[[int, int], None]
_listeners: list[ProgressListener] = []


def add_progress_listener(listener: ProgressListener) -> Callable[[], None]:
    """Also tell ``listener(queues_done, queues_total)`` in this process (the CLI's bar) as
    chunks finish; returns the function that removes it."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener)


def progress_key(flow_run_id: str | None) -> str:
    return "cycle-progress-" + (flow_run_id or "local")[:8].lower()


def plan_in_chunks(
    policies: list[ScalingPolicy],
    metrics_path: str | None,
    as_of: datetime,
    *,
    chunk_size: int,
    concurrency: int = 2,
    forecast_artifacts: bool = True,
    flow_run_id: str | None = None,
    versions: dict[str, int | None] | None = None,
    save: bool = True,
    approval: str = "none",
) -> list[dict[str, Any]]:
    """Map ``plan-chunk`` over the policies in chunks; one result per policy, in order.

    A chunk that still fails after its retries (the store is down) fails its queues, each
    named with the error. A progress artifact advances as chunks finish (and any listener in
    this process is told).
    """
    from prefect import get_run_logger, unmapped
    from prefect.context import FlowRunContext
    from prefect.futures import as_completed

    from capplan_app.task_runners import PLAN_CHUNK_TAG, runner_name
    from capplan_core.planning.batch import chunk_size_for, chunked
    from tasks.progress import ProgressArtifact

    size = chunk_size_for(len(policies), max_chunk=chunk_size, workers=concurrency)
    chunks = chunked(policies, size)
    total = len(policies)
    progress = ProgressArtifact(
        progress_key(flow_run_id),
        f"capacity-plan: {total} queue(s) in {len(chunks)} chunk(s)",
        step_percent=0.0,
    )
    context = FlowRunContext.get()
    get_run_logger().info(
        "%d queue(s) in %d plan-chunk task run(s) on %s",
        total,
        len(chunks),
        runner_name(context.task_runner if context else None),
    )
    futures = plan_chunk.with_options(tags=[PLAN_CHUNK_TAG]).map(
        chunks,
        metrics_path=unmapped(metrics_path),
        as_of=unmapped(as_of),
        index=list(range(len(chunks))),
        versions=[[(versions or {}).get(p.name) for p in c] for c in chunks],
        save=unmapped(save),
        approval=unmapped(approval),
        forecast_artifacts=unmapped(forecast_artifacts),
    )
    position = {f.task_run_id: i for i, f in enumerate(futures)}
    by_chunk: dict[int, list[dict[str, Any]]] = {}
    done = 0
    for future in as_completed(list(futures)):
        i = position[future.task_run_id]
        try:
            by_chunk[i] = future.result()
        except Exception as err:  # the chunk's retries are spent: its queues failed, named
            by_chunk[i] = [
                QueueResult.failure(
                    queue=p.queue,
                    policy=p.name,
                    mode=p.mode.value,
                    error=f"{type(err).__name__}: {err}",
                ).to_json()
                | {"exception": err}  # the cycle re-raises a store outage (not JSON)
                for p in chunks[i]
            ]
        done += len(chunks[i])
        progress(f"{done}/{total} queues", done / total)
        for listener in list(_listeners):
            listener(done, total)
    return [r for i in range(len(chunks)) for r in by_chunk[i]]
