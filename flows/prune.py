"""prune: retention for the store and for Prefect's own flow runs (scheduled hourly).

Limits: CAPPLAN_PLAN_RETENTION_DAYS (plans with their steps, simulations and forecast points;
quality reports), CAPPLAN_AUDIT_RETENTION_DAYS (audit rows, kept longer),
CAPPLAN_METRICS_RETENTION_DAYS (queue_metrics) and CAPPLAN_FLOW_RUN_RETENTION_DAYS (finished
flow runs). A proposed or live plan, one with open steps and each queue's newest plan are
kept whatever their age; running, paused and scheduled flow runs are never deleted.
"""

from typing import Annotated, Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from pydantic import Field

from tasks.retention import prune_flow_runs, prune_store


@flow(name="prune", log_prints=True)
def prune(
    dry_run: Annotated[
        bool, Field(description="count what would be deleted and delete nothing")
    ] = False,
) -> dict[str, Any]:
    store = prune_store(dry_run)
    runs = prune_flow_runs(dry_run)
    report = {**store, "flow_runs": runs}
    counts = {**store["pruned"], "flow_runs": runs["flow_runs"]}
    create_markdown_artifact(
        f"## {'Would prune' if dry_run else 'Pruned'}\n\n| records | count |\n|---|---|\n"
        + "".join(f"| {k} | {v} |\n" for k, v in counts.items())
        + f"\nOld plans kept (live, open steps, newest of their queue): "
        f"{store['plans_kept_old']}",
        key="prune",
        description="retention: records deleted this run",
    )
    return report
