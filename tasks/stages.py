"""The data stages of the pipeline as Prefect tasks: collect, clean, forecast, store.

Thin wrappers over capplan_core; the store comes from :mod:`capplan_app.bootstrap`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
from prefect.runtime import flow_run

from capplan_app.bootstrap import plan_store
from capplan_core.forecast import ForecastResult, NoHistoryError, forecast_queue
from capplan_core.metrics.file_source import data_end, read_queue_rows
from capplan_core.metrics.history import read_history
from capplan_core.planning.decide import Decision
from capplan_core.planning.pool_state import QueueState
from capplan_core.planning.records import plan_draft, skipped_draft
from capplan_core.policy import ScalingPolicy, load_policies
from capplan_core.quality import Assessment, assess
from tasks.common import capplan_io_task, capplan_task

load_policies_task = capplan_io_task(load_policies, name="load-policies", retries=0)
file_data_end = capplan_io_task(data_end, name="data-end")


@capplan_io_task(name="collect", task_run_name="collect-{policy.name}")
def collect(metrics_path: str | None, policy: ScalingPolicy, now: datetime) -> pd.DataFrame:
    """The raw metrics rows of the policy's queue: from the store (``queue_metrics``, the span
    its forecaster needs, up to ``now``), or from ``metrics_path`` for offline planning."""
    if metrics_path:
        return read_queue_rows(metrics_path, policy.queue)
    return read_history(plan_store(), policy, now)


@capplan_task(name="clean", task_run_name="clean-{policy.name}")
def clean(rows: pd.DataFrame, policy: ScalingPolicy, now: datetime) -> Assessment:
    """Rows cleaned to the planning interval, with the data-quality report."""
    return assess(rows, policy, now=now)


# the what-if and backtest flows read one queue's rows without a policy run name
collect_file = capplan_io_task(read_queue_rows, name="collect", task_run_name="collect-{queue}")


@capplan_task(name="forecast", task_run_name="forecast-{policy.name}")
def forecast(assessment: Assessment, policy: ScalingPolicy) -> ForecastResult | str:
    """The forecast, or (no usable history) the reason the plan holds current capacity."""
    series = assessment.clean.series
    try:
        return forecast_queue(series["arrival_rate"], policy.forecast, queue=policy.queue,
                              levels=(0.8, 0.95), exclude=series["outlier"].astype(bool),
                              seed=policy.simulation.seed)
    except NoHistoryError as err:
        return f"no usable history, holding current capacity: {err}"


@capplan_io_task(name="store-plan", task_run_name="store-plan-{policy.name}")
def store_plan(
    policy: ScalingPolicy, decision: Decision, state: QueueState, forecast: ForecastResult,
    assessment: Assessment, as_of: datetime,
) -> int:
    """Store the decided plan with its forecast and data-quality report in one transaction,
    keyed by this flow run and queue: a retry returns the plan id stored first."""
    store = plan_store()
    store.upsert_policies([policy])
    return store.create_plan(plan_draft(
        policy, decision, forecast, state, as_of=as_of, quality=assessment.quality.as_dict(),
        quality_passed=assessment.quality.passed, flow_run_id=_flow_run_id()))


@capplan_io_task(name="store-skipped", task_run_name="store-skipped-{policy.name}")
def store_skipped(policy: ScalingPolicy, reason: str, as_of: datetime,
                  quality: dict[str, Any] | None) -> int:
    """Store a skipped plan (and its failed quality report) once per flow run and queue."""
    store = plan_store()
    store.upsert_policies([policy])
    return store.create_plan(skipped_draft(policy, reason, as_of=as_of, quality=quality,
                                           flow_run_id=_flow_run_id()))


def _flow_run_id() -> str | None:
    """The id of the flow run storing the plan: the idempotency key of its store."""
    run_id = flow_run.id
    return None if run_id is None else str(run_id)


@capplan_io_task(name="expire-undecided")
def expire_undecided_plans() -> list[int]:
    """Expire manual plans whose approval deadline passed while their run was suspended."""
    return plan_store().expire_undecided(datetime.now(UTC))
