"""collect-metrics: poll every configured source once, then prune rows past the retention
horizon (scheduled every minute)."""

from typing import Annotated, Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from pydantic import Field

from capplan_core.policy_select import select_policies
from tasks.collect import collect_live, prune_metrics
from tasks.stages import load_policies_task, read_policies


@flow(name="collect-metrics", log_prints=True)
def collect_metrics(
    policies: Annotated[
        list[str] | None,
        Field(
            description="stored policy names whose sources to poll; empty: every enabled stored "
            "policy"
        ),
    ] = None,
    policy_path: Annotated[
        str | None,
        Field(
            description="poll the sources of this policy YAML file instead of the stored "
            "policies (collecting only reads the sources)"
        ),
    ] = None,
    interval_s: Annotated[int, Field(ge=1, le=3600, description="collection interval")] = 60,
    snapshot_ttl_s: Annotated[int, Field(ge=60, le=86_400)] = 600,
    retention_days: Annotated[
        float | None,
        Field(
            ge=1,
            le=3650,
            description="delete rows older than this (days); empty: "
            "CAPPLAN_METRICS_RETENTION_DAYS (35)",
        ),
    ] = None,
) -> dict[str, Any]:
    known = load_policies_task(policy_path) if policy_path else [v.policy for v in read_policies()]
    report = collect_live(select_policies(known, names=policies), interval_s, snapshot_ttl_s)
    report.update(prune_metrics(retention_days))
    if report["errors"]:
        create_markdown_artifact(
            "## Collection errors\n" + "\n".join(f"- {e}" for e in report["errors"]),
            key="collect-errors",
            description="queues that gave no metrics this cycle",
        )
    return report
