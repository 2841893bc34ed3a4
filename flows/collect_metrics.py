"""collect-metrics: poll every configured source once, then prune rows past the retention
horizon (scheduled every minute)."""

from typing import Annotated, Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from pydantic import Field

from capplan_app.bootstrap import policy_path as resolve_policy_path
from tasks.collect import collect_live, prune_metrics
from tasks.stages import load_policies_task


@flow(name="collect-metrics", log_prints=True)
def collect_metrics(
    policy_path: Annotated[str | None, Field(
        description="policy YAML file; empty: CAPPLAN_POLICY_PATH or the Prefect Variable "
                    "'capplan-policy-path'")] = None,
    interval_s: Annotated[int, Field(ge=1, le=3600, description="collection interval")] = 60,
    snapshot_ttl_s: Annotated[int, Field(ge=60, le=86_400)] = 600,
    retention_days: Annotated[float | None, Field(
        gt=0, le=3650, description="delete rows older than this; empty: "
                                   "CAPPLAN_METRICS_RETENTION_DAYS (35)")] = None,
) -> dict[str, Any]:
    policies = load_policies_task(resolve_policy_path(policy_path))
    report = collect_live(policies, interval_s, snapshot_ttl_s)
    report.update(prune_metrics(retention_days))
    if report["errors"]:
        create_markdown_artifact(
            "## Collection errors\n" + "\n".join(f"- {e}" for e in report["errors"]),
            key="collect-errors", description="queues that gave no metrics this cycle")
    return report
