"""Build adapters from settings, lazily. Nothing here connects at import time."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from capplan_core.settings import get_settings
from capplan_core.store.db import open_store
from capplan_core.store.repo import PlanStore

if TYPE_CHECKING:
    from redis import Redis

    from capplan_core.execution.scaler import Scaler
    from capplan_core.metrics.snapshot import MetricsSource
    from capplan_core.policy import ScalingPolicy, SourceSpec

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO_ROOT / "data" / "demo"
DEMO_METRICS = DEMO_DIR / "metrics.csv.gz"
DEMO_POLICIES = DEMO_DIR / "policies.yaml"


def get_store() -> PlanStore:
    """The plan store named by ``CAPPLAN_DATABASE_URL`` (SQLite under the data dir if unset)."""
    return open_store(get_settings().resolved_database_url())


def build_scaler(*, dry_run_replicas: int) -> Scaler:
    """The scaler named by ``CAPPLAN_SCALER``.

    The dry-run scaler has no cluster to read: its "live" count is ``dry_run_replicas``, which
    the caller sets to what the plan expects at that point (a dry run of a plan that went as
    planned).
    """
    from capplan_core.execution.factory import build_scaler as _build

    s = get_settings()
    if s.scaler == "dry-run":
        return _build("dry-run", default_replicas=dry_run_replicas)
    return _build(s.scaler, s.kubeconfig, s.kube_context)


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
    from redis import Redis as _Redis

    url = get_settings().redis_url
    if not url:
        raise ValueError("CAPPLAN_REDIS_URL is not set: collect-metrics needs Redis for its "
                         "snapshot cache")
    return _Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
