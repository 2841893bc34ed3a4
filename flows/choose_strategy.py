"""choose-strategy: each ``scaling.strategy: auto`` policy's strategy, from its own last week.

For every enabled stored policy that asks for ``auto``: read the queue's stored history
(``queue_metrics``), backtest its previous week (predictive against hybrid, fitted at each
origin only on the past), choose (capplan_core/planning/strategy_choice.py) and store the
choice with its figures as an audit row (``strategy-chosen``). Every later plan of the queue
reads it into its details (``strategy``, ``strategy_why``) and its steps carry it out. A queue
whose backtest fails is reported and skipped; the others are still chosen. Scheduled daily
(prefect.yaml); docs/backtest.md, "Strategy by evidence".

The week is kept as day-long stretches in the choice itself: a run replays only what came
after the newest stretch of the queue's last choice (a day, on the daily schedule), keeps the
stretches still inside the week, and chooses from their sums. The first run of a queue, or of
a changed policy, replays the whole week.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, cast

import pandas as pd
from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.futures import PrefectFuture
from pydantic import Field

from capplan_app.bootstrap import plan_store
from capplan_app.runtime import limit_blas_threads
from capplan_app.settings import get_settings
from capplan_app.task_runners import SettingsTaskRunner
from capplan_core.backtest.evidence import evidence_days as stretches_of
from capplan_core.backtest.run import BacktestResult, run_backtest
from capplan_core.metrics.history import history_span
from capplan_core.planning.policy_versions import PolicyVersion
from capplan_core.planning.strategy_choice import (
    AUDIT_ACTION,
    EVIDENCE_DAYS,
    StrategyChoice,
    choice_from_days,
    effective_strategy,
    reusable_days,
    stored_choice,
    target_reacts,
)
from capplan_core.planning.strategy_evidence import EvidenceDay, Strategy
from tasks.artifacts import artifact_key
from tasks.common import capplan_io_task, capplan_task
from tasks.progress import ProgressArtifact
from tasks.stages import read_policies

#: one progress update per tenth of a queue's replay: at a thousand queues the daily run makes
#: ten thousand API calls for them, not fifty thousand (bench/bench_choose_flow.py)
PROGRESS_STEP_PERCENT = 10.0

backtest_week = capplan_task(
    run_backtest, name="backtest-week", task_run_name="replay-{policy.name}"
)


@dataclass(frozen=True)
class _Replay:
    """One queue's run: the stretches kept from its last choice and the replay of the rest
    ([replay_from, end); no future when nothing new came since the last run)."""

    version: PolicyVersion
    kept: tuple[EvidenceDay, ...]
    replay_from: datetime
    end: datetime
    previous: Strategy  # what the queue's plans carry out now (the choice's switch band)
    reacts: bool  # the target can carry out hybrid (target_reacts)
    future: PrefectFuture[BacktestResult] | None = None

    @property
    def replayed_hours(self) -> float:
        return 0.0 if self.future is None else (self.end - self.replay_from).total_seconds() / 3600


@capplan_io_task(name="read-evidence", task_run_name="read-evidence-{version.name}")
def read_evidence(version: PolicyVersion, start: datetime, end: datetime) -> pd.DataFrame:
    """The queue's stored rows for the period to replay and the history its forecaster
    needs before it."""
    policy = version.policy
    return plan_store().metrics_history(policy.queue, start - history_span(policy.forecast), end)


@capplan_io_task(name="read-last-choice", task_run_name="read-last-choice-{queue}")
def read_last_choice(queue: str) -> StrategyChoice | None:
    """The queue's newest stored choice, whose stretches the new one may keep."""
    entry = plan_store().latest_audit_event(AUDIT_ACTION, queue=queue)
    return None if entry is None else stored_choice(entry.details)


@capplan_io_task(name="store-choice", task_run_name="store-choice-{choice.policy}")
def store_choice(choice: StrategyChoice, queue: str) -> None:
    plan_store().audit(AUDIT_ACTION, actor="choose-strategy", queue=queue, details=choice.as_dict())


@flow(name="choose-strategy", log_prints=True, task_runner=SettingsTaskRunner())
def choose_strategy(
    policies: Annotated[
        list[str] | None, Field(description="subset of policy names; default: every auto one")
    ] = None,
    evidence_days: Annotated[
        float, Field(gt=0, le=14, description="the backtested period before now, in days")
    ] = EVIDENCE_DAYS,
    cadence_s: Annotated[float, Field(gt=0, le=86_400, description="planning cadence")] = 1800,
) -> list[dict[str, Any]]:
    logger = get_run_logger()
    limit_blas_threads()
    now = datetime.now(UTC)
    chosen: list[dict[str, Any]] = []
    failed: list[str] = []
    wanted = None if policies is None else set(policies)
    stored = read_policies()
    unknown = sorted((wanted or set()) - {v.name for v in stored})
    if unknown:
        raise ValueError(f"policies: no stored policy named {unknown}")
    # every auto queue's replay is submitted at once: the flow's task runner
    # (CAPPLAN_TASK_RUNNER: threads, processes or Dask) spreads them
    replays: list[_Replay] = []
    for version in stored:
        policy = version.policy
        if wanted is not None and version.name not in wanted:
            continue
        if policy.scaling.strategy != "auto" or not policy.enabled or policy.shared is not None:
            continue  # a shared pool's backtest has no hybrid: its plans stay predictive
        window_s = policy.forecast.interval_minutes * 60.0
        end = datetime.fromtimestamp(now.timestamp() // window_s * window_s, UTC)
        start = end - timedelta(days=evidence_days)
        last_choice = cast(StrategyChoice | None, read_last_choice(policy.queue))
        reacts = target_reacts(policy, get_settings().scaler)
        previous, _ = effective_strategy(
            policy, last_choice, policy_version=version.version, now=now, target_reacts=reacts
        )
        kept = reusable_days(
            last_choice,
            policy=policy.name,
            policy_version=version.version,
            start=start,
            end=end,
            cadence_s=cadence_s,
        )
        replay_from = kept[-1].end if kept else start
        if (end - replay_from).total_seconds() < window_s:  # nothing new since the last run
            replays.append(_Replay(version, kept, replay_from, end, previous, reacts))
            continue
        rows = cast(pd.DataFrame, read_evidence(version, replay_from, end))
        since = replay_from - history_span(policy.forecast)
        last = None if rows.empty else pd.to_datetime(rows["timestamp"], utc=True).max()
        if last is None or last < replay_from:
            # nothing to replay: the queue never reported, or stopped before the period
            why = (
                f"no stored metrics for queue {policy.queue} since {since.isoformat()}"
                if last is None
                else f"queue {policy.queue} has reported no metrics since {last.isoformat()}"
            ) + " (collect-metrics, or capplan metrics import)"
            logger.error("policy %s: no choice (%s)", policy.name, why)
            failed.append(f"{policy.name}: {why}")
            continue
        progress = ProgressArtifact(
            artifact_key("strategy-progress", policy.queue),
            f"Choosing `{policy.queue}`'s strategy: windows replayed",
            step_percent=PROGRESS_STEP_PERCENT,
        )
        future = backtest_week.submit(
            rows,
            policy,
            start=pd.Timestamp(replay_from),
            end=pd.Timestamp(end),
            cadence_s=cadence_s,
            progress=progress,
        )
        replays.append(_Replay(version, kept, replay_from, end, previous, reacts, future))
    for r in replays:
        policy = r.version.policy
        days = list(r.kept)
        if r.future is not None:
            r.future.wait()
            if not r.future.state.is_completed():  # one queue's failure never stops others
                err = r.future.state.message or r.future.state.name
                logger.error(
                    "policy %s: no choice (%s); its plans keep the last one", policy.name, err
                )
                failed.append(f"{policy.name}: {err}")
                continue
            days += stretches_of(r.future.result())
        choice = choice_from_days(
            days,
            policy=policy,
            policy_version=r.version.version,
            chosen_at=now,
            target_reacts=r.reacts,
            previous=r.previous,
        )
        store_choice(choice, policy.queue)
        replayed_h = r.replayed_hours
        logger.info(
            "policy %s: %s (%s); replayed %.1f h, kept %d stretches of the last choice",
            policy.name,
            choice.chosen,
            choice.why,
            replayed_h,
            len(r.kept),
        )
        chosen.append(choice.as_dict() | {"replayed_hours": round(replayed_h, 2)})
    create_table_artifact(
        [
            {
                "policy": c["policy"],
                "version": c["policy_version"],
                "chosen": c["chosen"],
                "predictive met": c["predictive"]["attainment"],
                "predictive x oracle": c["predictive"]["x_oracle"],
                "hybrid met": c["hybrid"]["attainment"],
                "hybrid x oracle": c["hybrid"]["x_oracle"],
                "why": c["why"],
                "evidence": f"{c['start']} .. {c['end']}",
                "replayed hours": c["replayed_hours"],
            }
            for c in chosen
        ],
        key="strategy-choices",
        description=(
            "Each auto policy's strategy, chosen from the backtest of its last week (replayed "
            "hours: what this run replayed; the rest is kept from the last choice)"
        ),
    )
    if failed:
        raise RuntimeError(
            f"{len(failed)} of {len(failed) + len(chosen)} auto policies got no choice: "
            + "; ".join(failed)
        )
    return chosen
