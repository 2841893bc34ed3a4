"""plan-queue: the pipeline for one policy (a child run of capacity-plan).

collect (the store's history, or a metrics file offline) → clean → forecast → pool state
(the scaler's live count) → plan → simulate → decide (re-plan until confident) → store →
approve → execute. Each stage is a task in ``tasks/``; its logic is the core function it wraps.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, cast

import pandas as pd
from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from pydantic import Field

from capplan_app.runtime import limit_blas_threads
from capplan_core.forecast import ForecastResult
from capplan_core.metrics.history import no_metrics_reason
from capplan_core.planning import pipeline
from capplan_core.planning.decide import Decision, first_attempt
from capplan_core.planning.pool_state import QueueState
from capplan_core.policy import ScalingPolicy
from capplan_core.quality import Assessment
from tasks.approval_runs import request_approval
from tasks.approve import approve
from tasks.artifacts import publish_forecast, publish_plan, publish_quality
from tasks.execute import execute_plan
from tasks.planning import decide, plan, plan_shared_pool, read_pool_state, simulate
from tasks.stages import (
    NotAReplay,
    PreviewOnly,
    clean,
    collect,
    forecast,
    plan_time,
    preview_plan,
    read_policy,
    store_plan,
    store_skipped,
)
from tasks.summary import read_plan


@flow(name="plan-queue", flow_run_name="plan-{policy}", log_prints=True)
async def plan_queue(
    policy: Annotated[
        str,
        Field(
            min_length=1,
            max_length=200,
            pattern=r"^[A-Za-z0-9_.-]+$",
            description="policy name, read from the plan store",
        ),
    ],
    metrics_path: str | None = None,
    as_of: Annotated[
        datetime | None,
        Field(
            description="plan as of this time: previews only (save=false); default: the wall "
            "clock, or an offline metrics file's end for a preview"
        ),
    ] = None,
    approval: Literal["policy", "none"] = "policy",
    approval_poll_s: Annotated[int, Field(ge=1, le=300)] = 10,
    policy_version: Annotated[
        int | None,
        Field(ge=1, description="the stored version to plan under; default: the current one"),
    ] = None,
    save: Annotated[
        bool, Field(description="store the plan; false: a preview that writes nothing")
    ] = True,
    requested_by: Annotated[str, Field(max_length=200)] = "schedule",
    preview_policy: Annotated[
        ScalingPolicy | None,
        Field(
            description="preview this policy instead of the stored one (needs save=false and "
            "approval='none')"
        ),
    ] = None,
) -> dict[str, Any]:
    logger = get_run_logger()
    limit_blas_threads()  # one BLAS thread: the fits are tiny (capplan_app.runtime)
    if preview_policy is not None:
        if save or approval != "none":
            raise PreviewOnly(
                "preview_policy: a run with its own policy is a preview; it "
                f"needs save=false and approval='none' (got save={save}, "
                f"approval={approval!r})"
            )
        spec, version = preview_policy, None
    else:
        stored = read_policy(policy, policy_version)
        spec, version = stored.policy, stored.version
    if save and as_of is not None:
        raise NotAReplay(as_of)
    as_of = plan_time(metrics_path, as_of, save=save)
    ctx = QueueRun(spec, version, save, requested_by)
    if spec.shared is not None:  # every queue of the pool, then the pool for all of them
        # (each queue's data-quality and forecast artifacts are published as it goes)
        out = plan_shared_pool(spec, metrics_path, as_of, live=not metrics_path)
        if out.decision is None or out.state is None or out.forecast is None:
            logger.warning("shared pool %s not planned: %s", spec.name, out.reason)
            return ctx.skipped(str(out.reason), as_of, out.assessment)
        assert out.assessment is not None
        return ctx.carry_out(
            out.decision, out.state, out.forecast, out.assessment, as_of, approval, approval_poll_s
        )
    rows: pd.DataFrame = cast(pd.DataFrame, collect(metrics_path, spec, now=as_of))
    skip = pipeline.nothing_collected(
        rows, spec, as_of, from_file=bool(metrics_path), no_rows_reason=no_metrics_reason
    )
    if skip is not None:
        logger.warning("queue %s not planned: %s", spec.queue, skip)
        return ctx.skipped(skip, as_of, None)
    assessment = clean(rows, spec, now=as_of)
    publish_quality(assessment)
    skip = pipeline.quality_skip(assessment, spec)
    if skip is not None:
        logger.warning("queue %s not planned: %s", spec.queue, skip)
        return ctx.skipped(skip, as_of, assessment)

    fc = forecast(assessment, spec)
    if isinstance(fc, str):
        logger.warning("queue %s not planned: %s", spec.queue, fc)
        return ctx.skipped(fc, as_of, assessment)
    publish_forecast(assessment, fc)

    # planning live (from the store) starts from the scaler's count, not the measured one
    state = read_pool_state(assessment, spec, live=not metrics_path)
    attempt = first_attempt(fc)
    for _ in range(spec.scaling.max_replans + 1):
        proposal = plan(spec, fc, state, attempt, as_of, assessment)
        simulation = simulate(spec, fc, state, proposal, attempt)
        judgement = decide(spec, attempt, proposal, simulation)
        if judgement.next_attempt is None:
            break
        attempt = judgement.next_attempt
    return ctx.carry_out(
        judgement.decision, state, fc, assessment, as_of, approval, approval_poll_s
    )


@dataclass(frozen=True)
class QueueRun:
    """What one queue's run plans under: the policy, its stored version, and whether it
    stores anything."""

    policy: ScalingPolicy
    version: int | None
    save: bool
    requested_by: str

    def carry_out(
        self,
        decision: Decision,
        state: QueueState,
        fc: ForecastResult,
        assessment: Assessment,
        as_of: datetime,
        approval: str,
        approval_poll_s: int,
    ) -> dict[str, Any]:
        """store → approve → execute (a preview only shows the plan)."""
        spec, logger = self.policy, get_run_logger()
        if not self.save:
            summary = preview_plan(
                spec, decision, state, fc, assessment, as_of, policy_version=self.version
            )
            publish_plan(summary, summary.get("details", {}), summary.get("explanation", []))
            return summary
        plan_id = store_plan(
            spec, decision, state, fc, assessment, as_of, policy_version=self.version
        )
        summary = read_plan(plan_id)
        publish_plan(summary, summary.get("details", {}), summary.get("explanation", []))
        if summary["status"] != "proposed":  # superseded: the policy changed while it planned
            logger.warning("plan %s is %s: nothing is executed", plan_id, summary["status"])
            return summary
        if approval == "none":
            return read_plan(plan_id, note="plan only (approval='none')")
        # the policy decides; a person, if needed, decides in the plan's own approve-plan
        # run: this run (and the cycle) never waits for one
        outcome = approve(spec, plan_id, decision, summary, str(flow_run.id))
        if outcome.execute:
            execute_plan(spec.name, plan_id)
        elif outcome.ask_person:
            run = request_approval(plan_id, self.requested_by, approval_poll_s)
            return read_plan(plan_id, note=f"{outcome.reason}; waiting in approval run {run}")
        return read_plan(plan_id, note=outcome.reason)

    def skipped(
        self, reason: str, as_of: datetime, assessment: Assessment | None
    ) -> dict[str, Any]:
        if not self.save:
            return preview_plan(
                self.policy, None, None, None, assessment, as_of, skipped_reason=reason
            )
        quality = None if assessment is None else assessment.quality.as_dict()
        return read_plan(
            store_skipped(self.policy, reason, as_of, quality, policy_version=self.version)
        )
