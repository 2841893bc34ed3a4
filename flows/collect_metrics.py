"""collect-metrics: poll every configured source once (scheduled every minute)."""

from typing import Annotated, Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from pydantic import Field

from capplan_app.bootstrap import DEMO_POLICIES
from tasks.collect import collect_live
from tasks.stages import load_policies_task


@flow(name="collect-metrics", log_prints=True)
def collect_metrics(
    policy_path: Annotated[str, Field(description="policy YAML file")] = str(DEMO_POLICIES),
    interval_s: Annotated[int, Field(ge=5, le=3600, description="collection interval")] = 60,
    snapshot_ttl_s: Annotated[int, Field(ge=60, le=86_400)] = 600,
) -> dict[str, Any]:
    policies = load_policies_task(policy_path)
    report = collect_live(policies, interval_s, snapshot_ttl_s)
    if report["errors"]:
        create_markdown_artifact(
            "## Collection errors\n" + "\n".join(f"- {e}" for e in report["errors"]),
            key="collect-errors", description="queues that gave no metrics this cycle")
    return report
