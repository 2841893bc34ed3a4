"""backtest: replay history — capplan's plans against static, reactive and oracle baselines."""

import base64
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import Field

from capplan_app.bootstrap import DEMO_METRICS, DEMO_POLICIES
from capplan_core.backtest.run import run_backtest
from capplan_core.backtest.shared import run_shared_backtest
from capplan_core.policy_select import select_policies
from tasks.artifacts import artifact_key
from tasks.common import capplan_task
from tasks.progress import ProgressArtifact
from tasks.stages import collect_file, load_policies_task

backtest_task = capplan_task(run_backtest, name="replay", task_run_name="replay-{policy.name}")
shared_backtest_task = capplan_task(
    run_shared_backtest, name="replay-shared-pool", task_run_name="replay-{policy.name}"
)


@flow(name="backtest", log_prints=True)
def backtest(
    metrics_path: Annotated[str, Field(description="metrics file (CSV/Parquet)")] = str(
        DEMO_METRICS
    ),
    policy_path: Annotated[str, Field(description="policy YAML file")] = str(DEMO_POLICIES),
    policies: Annotated[list[str] | None, Field(description="subset of policy names")] = None,
    start: Annotated[datetime | None, Field(description="period start (UTC)")] = None,
    end: Annotated[datetime | None, Field(description="period end (UTC)")] = None,
    cadence_s: Annotated[float, Field(gt=0, le=86_400, description="planning cadence")] = 1800,
) -> list[dict[str, Any]]:
    out = []
    for policy in select_policies(load_policies_task(policy_path), names=policies):
        # a shared pool: every queue it serves, each scored against its own SLO
        rows = pd.concat([collect_file(metrics_path, q) for q in policy.served_queues])
        progress = ProgressArtifact(
            artifact_key("backtest-progress", policy.queue),
            f"Backtest of `{policy.queue}`: windows replayed",
        )
        replay = backtest_task if policy.shared is None else shared_backtest_task
        result = replay(rows, policy, start=start, end=end, cadence_s=cadence_s, progress=progress)
        data = result.to_dict()
        create_table_artifact(
            [
                {
                    "strategy": k,
                    **{m: v for m, v in s.items() if not isinstance(v, dict | list)},
                    **{
                        f"{q} slo_attainment": qs["slo_attainment"]
                        for q, qs in s.get("queues", {}).items()
                    },
                }
                for k, s in data["strategies"].items()
            ],
            key=artifact_key("backtest", policy.queue),
            description=f"Backtest of `{policy.queue}`: strategies scored on the same replay",
        )
        with tempfile.TemporaryDirectory() as tmp:
            png = result.figure(Path(tmp) / "backtest.png")
            uri = "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()
        create_markdown_artifact(
            f"## Backtest of `{policy.queue}`\n\n![backtest]({uri})",
            key=artifact_key("backtest-figure", policy.queue),
        )
        out.append(data)
    return out
