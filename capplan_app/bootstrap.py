"""The one place adapters are built from settings: lazily, cached, nothing at import time.

Tasks, flows and the CLI ask here for the plan store, the scaler, the metric sources and the
Redis client, and pass them into core functions; no core function looks an adapter up.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from capplan_app.settings import Settings, get_settings

if TYPE_CHECKING:
    from redis import Redis

    from capplan_core.execution.scaler import Scaler
    from capplan_core.metrics.snapshot import MetricsSource
    from capplan_core.policy import ScalingPolicy, SourceSpec
    from capplan_core.store.repo import PlanStore

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO_ROOT / "data" / "demo"
DEMO_METRICS = DEMO_DIR / "metrics.csv.gz"
DEMO_POLICIES = DEMO_DIR / "policies.yaml"

__all__ = ["DEMO_METRICS", "DEMO_POLICIES", "Settings", "get_settings", "is_dry_run",
           "metric_sources", "plan_store", "redis_client", "scaler"]


def plan_store() -> PlanStore:
    """The plan store named by ``CAPPLAN_DATABASE_URL`` (SQLite under the data dir if unset).

    Migrated and built once per process and URL (:func:`capplan_core.store.db.open_store`).
    """
    from capplan_core.store.db import open_store

    s = get_settings()
    return open_store(s.resolved_database_url(), s.migrate_on_start)


def scaler(*, dry_run_replicas: int) -> Scaler:
    """The scaler named by ``CAPPLAN_SCALER``.

    The dry-run scaler has no cluster to read: its "live" count is ``dry_run_replicas``, which
    the caller sets to what the plan expects at that point (a dry run of a plan that went as
    planned).
    """
    from capplan_core.execution.factory import build_scaler

    s = get_settings()
    if s.scaler == "dry-run":
        return build_scaler("dry-run", default_replicas=dry_run_replicas)
    return build_scaler(s.scaler, s.kubeconfig, s.kube_context)


def is_dry_run() -> bool:
    return get_settings().scaler == "dry-run"


def metric_sources(policies: list[ScalingPolicy]) -> tuple[list[MetricsSource], list[str]]:
    """One adapter per distinct source (kind + connection) over its policies' queues.

    Returns the sources and, for policies whose source cannot be built, why (named).
    File-sourced policies are skipped: files are imported, not polled.
    """
    from capplan_core.metrics.sources import source_from_spec

    s = get_settings()
    groups: dict[tuple[str, ...], tuple[SourceSpec, list[str]]] = {}
    for p in policies:
        if not p.enabled or p.source.kind == "file":
            continue
        spec = p.source
        key = (spec.kind, spec.redis_url or "", spec.prometheus_url or "",
               spec.stream_group or "", repr(sorted(spec.promql.items())))
        groups.setdefault(key, (spec, []))[1].append(p.queue)
    sources: list[MetricsSource] = []
    problems: list[str] = []
    for spec, queues in groups.values():
        try:
            sources.append(source_from_spec(spec, queues, redis_url=s.redis_url))
        except ValueError as err:
            problems.append(f"queues {queues}: {err}")
    return sources, problems


def redis_client() -> Redis:
    """The cache Redis (``CAPPLAN_REDIS_URL``); raises if it is not configured."""
    url = get_settings().redis_url
    if not url:
        raise ValueError("CAPPLAN_REDIS_URL is not set: collect-metrics needs Redis for its "
                         "snapshot cache")
    return _redis_for(url)


@lru_cache(maxsize=4)
def _redis_for(url: str) -> Redis:
    from redis import Redis as _Redis

    return _Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
