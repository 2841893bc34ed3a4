"""plan → simulate → decide, each its own Prefect task (thin wrappers over
:mod:`capplan_core.planning.decide`), so each attempt shows, and retries, on its own."""

from __future__ import annotations

from datetime import datetime

from capplan_app.bootstrap import live_workers, plan_store
from capplan_core.execution.scaler import ScalerError
from capplan_core.forecast import ForecastResult
from capplan_core.planning import pipeline
from capplan_core.planning.decide import Attempt, Judgement, propose, simulate_proposal
from capplan_core.planning.decide import decide as decide_attempt
from capplan_core.planning.pipeline import QueueOutcome
from capplan_core.planning.planner import PlanProposal
from capplan_core.planning.pool_state import QueueState
from capplan_core.policy import ScalingPolicy
from capplan_core.quality import Assessment
from capplan_core.simulation import SimulationSummary
from tasks.common import capplan_io_task, capplan_task
from tasks.simulate import fanout_simulate


def audited_live_count(policy: ScalingPolicy, measured: int) -> tuple[int, str]:
    """The count the scaler reads (the dry-run scaler: the last count capplan wrote); a
    scaler that cannot be read is audited (``scaler_read_failed``) and fails that queue."""
    try:
        return live_workers(policy, measured)
    except ScalerError as err:
        plan_store().audit(
            "scaler_read_failed",
            actor="capplan",
            queue=policy.queue,
            details={
                "target": policy.target.model_dump(),
                "kind": err.kind,
                "error": str(err),
                "transient": err.transient,
            },
        )
        raise


@capplan_io_task(name="pool-state", task_run_name="pool-state-{policy.name}")
def read_pool_state(assessment: Assessment, policy: ScalingPolicy, live: bool) -> QueueState:
    """Workers, backlog and service time now (:func:`capplan_core.planning.pipeline.pool`);
    ``live``: from the count the scaler reads, the measured count kept beside it."""
    return pipeline.pool(assessment, policy, audited_live_count if live else None)


@capplan_task(name="plan", task_run_name="plan-{policy.name}-attempt-{attempt.number}")
def plan(
    policy: ScalingPolicy,
    forecast: ForecastResult,
    state: QueueState,
    attempt: Attempt,
    now: datetime,
    assessment: Assessment,
) -> PlanProposal:
    """Size each window for the SLO (plus the attempt's extra workers) and schedule steps."""
    return propose(
        policy,
        forecast,
        state,
        attempt,
        now=now,
        data_quality_warning=bool(assessment.quality.warnings),
    )


@capplan_task(name="simulate", task_run_name="simulate-{policy.name}-attempt-{attempt.number}")
def simulate(
    policy: ScalingPolicy,
    forecast: ForecastResult,
    state: QueueState,
    proposal: PlanProposal,
    attempt: Attempt,
) -> SimulationSummary:
    """Monte Carlo of the proposal, replications fanned out over the task runner."""
    return simulate_proposal(
        policy, forecast, state, proposal, attempt, simulate_fn=fanout_simulate
    )


@capplan_task(name="decide", task_run_name="decide-{policy.name}-attempt-{attempt.number}")
def decide(
    policy: ScalingPolicy, attempt: Attempt, proposal: PlanProposal, simulation: SimulationSummary
) -> Judgement:
    """Keep the plan, or add workers where the simulation failed and try again."""
    return decide_attempt(policy, attempt, proposal, simulation)


@capplan_task(name="plan-shared-pool", task_run_name="plan-shared-pool-{policy.name}")
def plan_shared_pool(
    policy: ScalingPolicy, metrics_path: str | None, now: datetime, live: bool
) -> QueueOutcome:
    """A shared pool's whole pipeline (capplan_core/planning/shared_pipeline.py): each queue
    collected, cleaned and forecast, its data-quality and forecast artifacts published (one
    per queue), then the pool planned and proven for all of them; ``live``: from the count the
    scaler reads."""
    from capplan_core.metrics.history import no_metrics_reason
    from capplan_core.planning.shared_pipeline import plan_shared
    from tasks.artifacts import publish_forecast, publish_quality
    from tasks.stages import rows_reader

    def published(assessment: Assessment, fc: ForecastResult | None) -> None:
        publish_quality(assessment)
        if fc is not None:
            publish_forecast(assessment, fc)

    return plan_shared(
        policy,
        rows_reader(metrics_path, [policy], now),
        now,
        from_file=bool(metrics_path),
        live_count=audited_live_count if live else None,
        no_rows_reason=no_metrics_reason,
        on_queue=published,
    )
