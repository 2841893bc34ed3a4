"""The data stages of the pipeline as Prefect tasks: collect, clean, forecast, store.

Thin wrappers over capplan_core; the store comes from :mod:`capplan_app.bootstrap`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from prefect.runtime import flow_run

from capplan_app.bootstrap import get_settings, plan_store
from capplan_core.forecast import ForecastResult
from capplan_core.metrics.file_source import data_end, read_metrics_file_cached, read_queue_rows
from capplan_core.metrics.history import read_history
from capplan_core.planning import pipeline
from capplan_core.planning.decide import Decision
from capplan_core.planning.policy_versions import PolicyVersion
from capplan_core.planning.pool_state import QueueState
from capplan_core.planning.records import plan_draft, skipped_draft
from capplan_core.planning.stored_plan import as_stored
from capplan_core.planning.strategy_choice import stored_strategy
from capplan_core.planning.strategy_evidence import Strategy
from capplan_core.policy import ScalingPolicy, load_policies
from capplan_core.quality import Assessment
from capplan_core.utc import utc_datetime
from tasks.common import capplan_io_task, capplan_task

load_policies_task = capplan_io_task(load_policies, name="load-policies", retries=0)
file_data_end = capplan_io_task(data_end, name="data-end")


def rows_reader(
    metrics_path: str | None, policies: list[ScalingPolicy], now: datetime
) -> Callable[[ScalingPolicy], pd.DataFrame]:
    """Each queue's raw rows: the queues split out of the file in one pass (offline), or
    their span of stored history (``queue_metrics``) up to ``now``."""
    if not metrics_path:
        store = plan_store()
        return lambda policy: read_history(store, policy, now)
    frame = read_metrics_file_cached(metrics_path)
    wanted = frame.loc[frame["queue"].isin([q for p in policies for q in p.served_queues])]
    groups = {str(q): g.reset_index(drop=True) for q, g in wanted.groupby("queue", sort=False)}
    empty = frame.iloc[:0]
    return lambda policy: groups.get(policy.queue, empty)


@capplan_io_task(name="collect", task_run_name="collect-{policy.name}")
def collect(metrics_path: str | None, policy: ScalingPolicy, now: datetime) -> pd.DataFrame:
    """The raw metrics rows of the policy's queue: from the store (``queue_metrics``, the span
    its forecaster needs, up to ``now``), or from ``metrics_path`` for offline planning."""
    return rows_reader(metrics_path, [policy], now)(policy)


# the pipeline's stages (capplan_core.planning.pipeline), each a task of its own
clean = capplan_task(pipeline.clean, name="clean", task_run_name="clean-{policy.name}")
forecast = capplan_task(pipeline.forecast, name="forecast", task_run_name="forecast-{policy.name}")

# the what-if and backtest flows read one queue's rows without a policy run name
collect_file = capplan_io_task(read_queue_rows, name="collect", task_run_name="collect-{queue}")


@capplan_io_task(name="read-policy", task_run_name="read-policy-{name}")
def read_policy(name: str, version: int | None = None) -> PolicyVersion:
    """A stored policy at ``version`` (default: its current version)."""
    store = plan_store()
    return store.current_policy(name) if version is None else store.policy_version(name, version)


@capplan_io_task(name="read-policies")
def read_policies() -> list[PolicyVersion]:
    """Every stored policy at its current version."""
    return plan_store().list_policies()


@capplan_io_task(name="store-plan", task_run_name="store-plan-{policy.name}")
def store_plan(
    policy: ScalingPolicy,
    decision: Decision,
    state: QueueState,
    forecast: ForecastResult,
    assessment: Assessment,
    as_of: datetime,
    policy_version: int | None = None,
) -> int:
    """Store the decided plan with its forecast and data-quality report in one transaction,
    keyed by this flow run and queue: a retry returns the plan id stored first. The plan
    records ``policy_version``, the version it was made under."""
    return plan_store().create_plan(
        plan_draft(
            policy,
            decision,
            forecast,
            state,
            as_of=as_of,
            quality=assessment.quality.as_dict(),
            quality_passed=assessment.quality.passed,
            flow_run_id=_flow_run_id(),
            policy_version=policy_version,
            strategy=plan_strategy(policy, policy_version, as_of),
        )
    )


def plan_strategy(
    policy: ScalingPolicy, policy_version: int | None, as_of: datetime
) -> tuple[Strategy, str]:
    """The strategy a plan made now carries out, and why (:func:`stored_strategy`)."""
    return stored_strategy(plan_store(), policy, policy_version, as_of, get_settings().scaler)


@capplan_io_task(name="store-skipped", task_run_name="store-skipped-{policy.name}")
def store_skipped(
    policy: ScalingPolicy,
    reason: str,
    as_of: datetime,
    quality: dict[str, Any] | None,
    policy_version: int | None = None,
) -> int:
    """Store a skipped plan (and its failed quality report) once per flow run and queue."""
    return plan_store().create_plan(
        skipped_draft(
            policy,
            reason,
            as_of=as_of,
            quality=quality,
            flow_run_id=_flow_run_id(),
            policy_version=policy_version,
        )
    )


@capplan_task(name="preview-plan", task_run_name="preview-plan-{policy.name}")
def preview_plan(
    policy: ScalingPolicy,
    decision: Decision | None,
    state: QueueState | None,
    forecast: ForecastResult | None,
    assessment: Assessment | None,
    as_of: datetime,
    skipped_reason: str | None = None,
    policy_version: int | None = None,
) -> dict[str, Any]:
    """The plan as it would be stored, built in memory: a preview writes nothing.

    The same draft the store would take, turned into the plan a store keeps
    (:func:`~capplan_core.planning.stored_plan.as_stored`), so a preview shows exactly what a
    stored plan shows (its id is null, its status ``preview``).
    """
    from tasks.summary import plan_result

    quality = None if assessment is None else assessment.quality.as_dict()
    if skipped_reason is not None or decision is None or state is None or forecast is None:
        draft = skipped_draft(policy, skipped_reason or "not planned", as_of=as_of, quality=quality)
    else:
        draft = plan_draft(
            policy,
            decision,
            forecast,
            state,
            as_of=as_of,
            quality=quality or {},
            quality_passed=None,
            strategy=plan_strategy(policy, policy_version, as_of),
        )
    return (
        plan_result(
            as_stored(draft, plan_id=0, first_step_id=1, created_at=as_of),
            note="preview: nothing stored (capplan plan --save stores plans)",
        )
        .as_preview(skipped=skipped_reason is not None)
        .to_json()
    )


class PreviewOnly(ValueError):
    """A run that carries its own policy (a file, or an object) may only preview: it stores,
    approves and executes nothing (a run must never bring its own safety envelope)."""


class NotAReplay(ValueError):
    """A run that saves plans plans at the wall clock: ``as_of`` is for previews."""

    def __init__(self, as_of: datetime) -> None:
        super().__init__(
            f"as_of: {as_of.isoformat()!r} is refused for a run that saves plans: a saved plan "
            "is made at the wall clock, so that it can be executed; as_of is for previews "
            "(save=false) and backtests"
        )


def plan_time(metrics_path: str | None, as_of: datetime | None, *, save: bool) -> datetime:
    """ "Now" of a run. A run that saves plans plans at the wall clock, always (its plans can
    be executed; :class:`NotAReplay` for ``as_of``). A preview plans at ``as_of``, else at
    the metrics file's end (offline), else at the wall clock."""
    if save:
        if as_of is not None:
            raise NotAReplay(as_of)
        return datetime.now(UTC)
    if as_of is not None:
        return utc_datetime(as_of)
    if metrics_path:
        return utc_datetime(file_data_end(metrics_path))
    return datetime.now(UTC)


def _flow_run_id() -> str | None:
    """The id of the flow run storing the plan: the idempotency key of its store."""
    run_id = flow_run.id
    return None if run_id is None else str(run_id)


@capplan_io_task(name="expire-undecided")
def expire_undecided_plans() -> list[int]:
    """Expire plans whose approval deadline passed (on the store's clock) without a decision:
    their run was suspended, killed, or never started."""
    store = plan_store()
    return store.expire_undecided(store.now())
