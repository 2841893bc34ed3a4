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

    from capplan_adapters.scalers.k8s_keda import TriggerTarget
    from capplan_adapters.store.repo import PlanStore
    from capplan_core.execution.scaler import Scaler
    from capplan_core.metrics.snapshot import MetricsSource
    from capplan_core.planning.stored_plan import StoredPlan
    from capplan_core.policy import ScalingPolicy, SourceSpec

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO_ROOT / "data" / "demo"
DEMO_METRICS = DEMO_DIR / "metrics.csv.gz"
DEMO_POLICIES = DEMO_DIR / "policies.yaml"

__all__ = [
    "DEMO_METRICS",
    "DEMO_POLICIES",
    "Settings",
    "get_settings",
    "is_dry_run",
    "live_workers",
    "metric_sources",
    "plan_store",
    "redis_client",
    "scaler",
    "step_scaler",
]


def plan_store() -> PlanStore:
    """The plan store named by ``CAPPLAN_DATABASE_URL`` (SQLite under the data dir if unset).

    Migrated and built once per process and URL (:func:`capplan_adapters.store.db.open_store`).
    """
    from capplan_adapters.store.db import open_store

    s = get_settings()
    return open_store(s.resolved_database_url(), s.migrate_on_start)


def scaler(*, dry_run_replicas: int, trigger_target: TriggerTarget | None = None) -> Scaler:
    """The scaler named by ``CAPPLAN_SCALER``.

    The dry-run scaler has no cluster to read: its "live" count is ``dry_run_replicas``, which
    the caller sets to what the plan expects at that point (a dry run of a plan that went as
    planned).
    """
    from capplan_adapters.scalers.factory import build_scaler

    s = get_settings()
    if s.scaler == "dry-run":
        return build_scaler("dry-run", default_replicas=dry_run_replicas)
    if s.scaler == "supervisor":
        if not s.supervisor_url:
            raise ValueError(
                "CAPPLAN_SCALER=supervisor needs CAPPLAN_SUPERVISOR_URL "
                "(http://host:port/RPC2 or unix:///path.sock)"
            )
        return build_scaler(
            "supervisor",
            supervisor_url=s.supervisor_url,
            supervisor_username=s.supervisor_username,
            supervisor_password=s.supervisor_password,
        )
    return build_scaler(s.scaler, s.kubeconfig, s.kube_context, trigger_target=trigger_target)


def step_scaler(plan: StoredPlan, step_id: int) -> Scaler:
    """The scaler for one step of ``plan``: a dry run's "live" count is what the plan expects
    just before that step, and a hybrid policy's ScaledObject also gets its rate target."""
    from capplan_adapters.scalers.k8s_keda import plan_trigger_target
    from capplan_core.execution.executor import planned_live_replicas

    policy = plan_store().policy_for_plan(plan)
    return scaler(
        dry_run_replicas=planned_live_replicas(plan.steps, step_id, plan.current_workers or 0),
        trigger_target=plan_trigger_target(policy, plan.details.get("state")),
    )


def live_workers(policy: ScalingPolicy, measured_workers: int) -> tuple[int, str]:
    """The worker count a plan for ``policy`` starts from, and where it was read.

    A real scaler is asked (the Deployment, ScaledObject or supervisord group); the dry-run
    scaler has nothing to read, so it is the last count capplan wrote for the queue (kept in
    the store), or, before any write, the measured ``workers``.

    Raises:
        ScalerError: the scaler cannot read the target (unreachable, not found, forbidden).
    """
    if is_dry_run():
        written = plan_store().last_written_workers(policy.queue)
        if written is None:
            return measured_workers, "measured (dry run, nothing written yet)"
        return written, "dry run: last count capplan wrote"
    return (
        scaler(dry_run_replicas=measured_workers).read(policy.target).replicas,
        f"{get_settings().scaler} scaler",
    )


def is_dry_run() -> bool:
    return get_settings().scaler == "dry-run"


def metric_sources(policies: list[ScalingPolicy]) -> tuple[list[MetricsSource], list[str]]:
    """One adapter per distinct source (kind + connection) over its policies' queues.

    Returns the sources and, for policies whose source cannot be built, why (named).
    File-sourced policies are skipped: files are imported, not polled.
    """
    from capplan_adapters.metrics.sources import source_from_spec
    from capplan_app.secrets import SecretUnavailable, resolve_secret

    s = get_settings()
    groups: dict[tuple[str, ...], tuple[SourceSpec, list[str]]] = {}
    for p in policies:
        if not p.enabled or p.source.kind == "file":
            continue
        spec = p.source
        key = (
            spec.kind,
            spec.redis_url or spec.redis_url_ref or "",
            spec.prometheus_url or spec.prometheus_url_ref or "",
            spec.stream_group or "",
            repr(sorted(spec.promql.items())),
        )
        groups.setdefault(key, (spec, []))[1].append(p.queue)
    sources: list[MetricsSource] = []
    problems: list[str] = []
    default_redis = s.redis_url.get_secret_value() if s.redis_url else None
    for spec, queues in groups.values():
        try:  # a secret reference is read here, when the source is built, and never kept
            redis_url = (
                resolve_secret(spec.redis_url_ref).get_secret_value()
                if spec.redis_url_ref
                else default_redis
            )
            prometheus_url = (
                resolve_secret(spec.prometheus_url_ref).get_secret_value()
                if spec.prometheus_url_ref
                else None
            )
            sources.append(
                source_from_spec(spec, queues, redis_url=redis_url, prometheus_url=prometheus_url)
            )
        except (ValueError, SecretUnavailable) as err:
            problems.append(f"queues {queues}: {err}")
    return sources, problems


def redis_client() -> Redis:
    """The cache Redis (``CAPPLAN_REDIS_URL``); raises if it is not configured."""
    url = get_settings().redis_url
    if not url:
        raise ValueError(
            "CAPPLAN_REDIS_URL is not set: collect-metrics needs Redis for its snapshot cache"
        )
    return _redis_for(url.get_secret_value())


@lru_cache(maxsize=4)
def _redis_for(url: str) -> Redis:
    from redis import Redis as _Redis

    return _Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
