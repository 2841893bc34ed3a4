"""what-if: plan and simulate a changed scenario beside the unchanged one.

Triggered from the Prefect UI (its parameters render as a form), the Prefect API
(``run_deployment("what-if/what-if", parameters={"scenario": {...}})``) or ``capplan what-if``.
A bad parameter fails the run at once with a message naming it; nothing is stored or scaled.
"""

from datetime import datetime
from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from pydantic import Field

from capplan_app.bootstrap import DEMO_METRICS, DEMO_POLICIES
from capplan_core.utc import utc_datetime
from capplan_core.whatif.run import run_what_if
from capplan_core.whatif.scenario import WhatIfError, WhatIfScenario
from tasks.artifacts import artifact_key
from tasks.common import capplan_task
from tasks.stages import collect_file, file_data_end, load_policies_task

what_if_task = capplan_task(run_what_if, name="plan-and-simulate-both")


@flow(name="what-if", flow_run_name="what-if {scenario.policy}", log_prints=True)
def what_if(
    scenario: WhatIfScenario,
    metrics_path: Annotated[str, Field(description="metrics file (CSV/Parquet)")] = str(
        DEMO_METRICS
    ),
    policy_path: Annotated[str, Field(description="policy YAML file")] = str(DEMO_POLICIES),
    as_of: Annotated[datetime | None, Field(description="as of (default: data end)")] = None,
) -> dict[str, Any]:
    logger = get_run_logger()
    known = {p.name: p for p in load_policies_task(policy_path)}
    if scenario.policy not in known:
        raise WhatIfError(
            f"scenario.policy: unknown policy {scenario.policy!r}; known: {sorted(known)}"
        )
    policy = known[scenario.policy]
    now = utc_datetime(as_of if as_of is not None else file_data_end(metrics_path))
    rows = collect_file(metrics_path, policy.queue)
    result = what_if_task(rows, policy, scenario, as_of=now)
    table = result.table()
    create_table_artifact(
        table["rows"],
        key=artifact_key("what-if", policy.queue),
        description=f"What-if for `{policy.queue}`: unchanged vs "
        f"`{scenario.model_dump(exclude_none=True)}`",
    )
    logger.info(
        "what-if %s: %s",
        policy.name,
        {r["metric"]: (r["baseline"], r["scenario"]) for r in table["rows"]},
    )
    return result.to_dict()
