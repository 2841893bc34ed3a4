"""Retention stages: prune the plan store and Prefect's finished flow runs."""

from datetime import UTC, datetime
from typing import Any

from capplan_app.bootstrap import get_settings, plan_store
from capplan_app.prefect_retention import prune_flow_runs as _prune_flow_runs
from capplan_core.retention import cutoffs
from tasks.common import capplan_io_task


@capplan_io_task(name="prune-store")
def prune_store(dry_run: bool = False) -> dict[str, Any]:
    """Plans, audit rows and queue_metrics past the CAPPLAN_*_RETENTION_DAYS limits."""
    cut = cutoffs(datetime.now(UTC), get_settings().retention_limits())
    return plan_store().prune(cut, dry_run=dry_run).as_dict()


@capplan_io_task(name="prune-flow-runs")
def prune_flow_runs(dry_run: bool = False) -> dict[str, Any]:
    """Prefect's finished flow runs older than CAPPLAN_FLOW_RUN_RETENTION_DAYS."""
    return _prune_flow_runs(
        cutoffs(datetime.now(UTC), get_settings().retention_limits()).flow_runs, dry_run=dry_run
    )
