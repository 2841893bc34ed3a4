"""Run the capacity-plan flow from the CLI, with input checked before anything is written."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from capplan_cli.output import fail
from capplan_core.policy import PolicyError, ScalingPolicy, load_policies
from capplan_core.policy_select import PolicySelectionError, select_policies


def file_or_stored_policies(policy: Path | None) -> list[ScalingPolicy]:
    """The policies of ``--policy FILE``, else every stored policy at its current version;
    exit 2 naming the field for a bad file or when neither gives a policy."""
    if policy is not None:
        try:
            return load_policies(policy)
        except PolicyError as err:
            fail(str(err))
    from capplan_app.bootstrap import plan_store

    policies = [v.policy for v in plan_store().list_policies()]
    if not policies:
        fail(
            "--policy: no policy file given and no policy is stored; store them with "
            "`capplan policies apply FILE` (or preview a file with --policy FILE)"
        )
    return policies


def check_inputs(metrics: Path | None, policy: Path | None, names: list[str] | None) -> None:
    """Validate the policy file (or the stored policies) and the metrics file (exit 2 with the
    field named) before any run."""
    policies = file_or_stored_policies(policy)
    try:
        select_policies(policies, names=names)
    except PolicySelectionError as err:
        fail(f"--policies: {err}")
    if metrics is None:  # planning from the store
        return
    from capplan_core.metrics.file_source import read_metrics_file_cached
    from capplan_core.metrics.schema import MetricsFileError

    try:
        read_metrics_file_cached(metrics)
    except MetricsFileError as err:
        fail(str(err))


def public(result: dict[str, Any]) -> dict[str, Any]:
    """The documented keys of a cycle's result (:meth:`QueueResult.public_of`), and the rows
    cleaning dropped, per column and reason (issue 22)."""
    from capplan_core.planning.queue_result import QueueResult

    return QueueResult.public_of(result)


def run_capacity_plan(
    metrics: Path | None,
    policy: Path | None,
    *,
    names: list[str] | None,
    as_of: datetime | None,
    approval: Literal["policy", "none"],
    approval_poll_s: int = 10,
    save: bool = True,
    requested_by: str = "cli",
) -> list[dict[str, Any]]:
    """Run capacity-plan in this process: the stored policies, or (``policy``) a preview of a
    file's policies that stores nothing."""
    # the flow's own runner follows CAPPLAN_TASK_RUNNER (threads, processes or Dask)
    from flows.capacity_plan import capacity_plan

    if policy is not None:
        return asyncio.run(
            capacity_plan(
                metrics_path=str(metrics) if metrics else None,
                policy_path=str(policy),
                policies=names,
                as_of=as_of,
                approval="none",
                save=False,
                requested_by=requested_by,
            )
        )
    return asyncio.run(
        capacity_plan(
            metrics_path=str(metrics) if metrics else None,
            policies=names,
            as_of=as_of,
            approval=approval,
            approval_poll_s=approval_poll_s,
            save=save,
            requested_by=requested_by,
        )
    )
