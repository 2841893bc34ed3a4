"""Collect stage for live sources (Redis, Prometheus): one pipelined cycle per run."""

from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import get_run_logger

from capplan_adapters.metrics.cache import RedisSnapshots
from capplan_app.bootstrap import get_settings, metric_sources, plan_store, redis_client
from capplan_core.metrics.collect import collect_once
from capplan_core.policy import ScalingPolicy
from tasks.common import capplan_io_task


@capplan_io_task(name="collect-live", retries=2, retry_delay_seconds=[2, 10])
def collect_live(
    policies: list[ScalingPolicy], interval_s: float, snapshot_ttl_s: int
) -> dict[str, Any]:
    """Poll every configured source once; write rows idempotently; report per-queue errors.

    A failing source or queue never stops the others; a store failure is retried (the
    snapshot cache is only advanced once the rows are written).
    """
    logger = get_run_logger()
    sources, problems = metric_sources(policies)
    store = plan_store()
    written: list[int] = []

    def write(rows: list[dict[str, Any]]) -> None:
        written.append(store.record_metrics(rows))

    result = collect_once(
        sources,
        write,
        datetime.now(UTC),
        previous=RedisSnapshots(redis_client(), ttl_s=snapshot_ttl_s),
        interval_s=interval_s,
    )
    errors = problems + [f"{e.source} {e.queue or '(all)'}: {e.error}" for e in result.errors]
    for err in errors:
        logger.warning("collect: %s", err)
    return {"queues": len(result.snapshots), "rows_written": sum(written), "errors": errors}


@capplan_io_task(name="prune-metrics")
def prune_metrics(retention_days: float | None = None) -> dict[str, Any]:
    """Delete ``queue_metrics`` rows older than the retention horizon
    (``CAPPLAN_METRICS_RETENTION_DAYS``, default 35 days, unless ``retention_days`` is given)."""
    days = retention_days if retention_days is not None else (get_settings().metrics_retention_days)
    cutoff = datetime.now(UTC) - timedelta(days=days)
    return {"pruned": plan_store().prune_metrics(cutoff), "older_than": cutoff.isoformat()}
