"""The pipeline's stages as Prefect tasks: thin wrappers over capplan_core."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd

from capplan_app.bootstrap import plan_store
from capplan_core.forecast import ForecastResult, NoHistoryError, forecast_queue
from capplan_core.metrics.file_source import data_end, read_queue_rows
from capplan_core.planning.decide import Decision, QueueState, decide
from capplan_core.planning.records import plan_record, skipped_record
from capplan_core.policy import ScalingPolicy, load_policies
from capplan_core.quality import Assessment, assess, latest_state
from tasks.common import capplan_io_task, capplan_task
from tasks.simulate import fanout_simulate

load_policies_task = capplan_io_task(load_policies, name="load-policies", retries=0)
file_data_end = capplan_io_task(data_end, name="data-end")
collect_file = capplan_io_task(read_queue_rows, name="collect", task_run_name="collect-{queue}")
clean_and_check = capplan_task(assess, name="clean-and-check")


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


@capplan_task(name="plan-and-simulate", task_run_name="plan-and-simulate-{policy.name}")
def plan_and_simulate(
    policy: ScalingPolicy, forecast: ForecastResult, assessment: Assessment, now: datetime
) -> tuple[Decision, QueueState]:
    st = latest_state(assessment.clean)
    state = QueueState(current_workers=int(st["current_workers"]),
                       current_backlog=st["current_backlog"],
                       mean_service_s=st["mean_service_s"], service_scv=st["service_scv"])
    decision = decide(policy, forecast, state, now=now,
                      data_quality_warning=bool(assessment.quality.warnings),
                      simulate_fn=fanout_simulate)
    return decision, state


@capplan_io_task(name="store-plan", task_run_name="store-plan-{policy.name}")
def store_plan(
    policy: ScalingPolicy, decision: Decision, state: QueueState, forecast: ForecastResult,
    assessment: Assessment, as_of: datetime,
) -> int:
    store = plan_store()
    store.upsert_policies([policy])
    store.save_quality_report(policy.queue, assessment.quality.passed,
                              assessment.quality.as_dict())
    plan_id = store.create_plan(plan_record(policy, decision, forecast, state, as_of=as_of,
                                            quality=assessment.quality.as_dict()))
    level = 0.8
    lower, upper = forecast.bounds[level]
    store.save_forecast(plan_id, [
        {"queue_name": policy.queue, "forecast_time": t.to_pydatetime(),
         "predicted_rate": float(m), "confidence_lower": float(lo), "confidence_upper": float(hi),
         "level": level, "model": forecast.model}
        for t, m, lo, hi in zip(forecast.timestamps, forecast.mean, lower, upper, strict=True)
    ])
    return plan_id


@capplan_io_task(name="store-skipped", task_run_name="store-skipped-{policy.name}")
def store_skipped(policy: ScalingPolicy, reason: str, as_of: datetime,
                  quality: dict[str, Any] | None) -> int:
    store = plan_store()
    store.upsert_policies([policy])
    if quality is not None:
        store.save_quality_report(policy.queue, False, quality)
    return store.create_plan(skipped_record(policy, reason, as_of=as_of, quality=quality))


def as_utc(ts: datetime | pd.Timestamp) -> datetime:
    t = pd.Timestamp(ts)
    return (t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")).to_pydatetime()


@capplan_io_task(name="expire-undecided")
def expire_undecided_plans() -> list[int]:
    """Expire manual plans whose approval deadline passed while their run was suspended."""
    return plan_store().expire_undecided(datetime.now(UTC))
