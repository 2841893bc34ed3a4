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
    from capplan_adapters.store.plan_reads import PlanReader
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
    "PLANNING_POOL_WRITES",
    "Settings",
    "get_settings",
    "in_planning_pool",
    "is_dry_run",
    "live_workers",
    "metric_sources",
    "plan_reader",
    "plan_store",
    "redis_client",
    "refuse_writes_in_planning_pool",
    "scaler",
    "step_scaler",
]


def plan_store() -> PlanStore:
    """The plan store named by ``CAPPLAN_DATABASE_URL`` (SQLite under the data dir if unset).

    Migrated and built once per process and URL (:func:`capplan_adapters.store.db.open_store`).
    """
    from capplan_adapters.store.db import open_store

    s = get_settings()
    store = open_store(s.resolved_database_url(), s.migrate_on_start)
    store.approver_anchors = s.approver_anchor_keys  # never from the store itself
    return store


def plan_reader() -> PlanReader:
    """The reads of :func:`plan_store` (plans, their audit, the current policies) without the
    ORM, for commands that only read (``capplan plans list``): same store, same answers."""
    from capplan_adapters.store.db import open_reader

    s = get_settings()
    return open_reader(s.resolved_database_url(), s.migrate_on_start)


def scaler(*, dry_run_replicas: int, trigger_target: TriggerTarget | None = None) -> Scaler:
    """The scaler named by ``CAPPLAN_SCALER``.

    The dry-run scaler has no cluster to read: its "live" count is ``dry_run_replicas``, which
    the caller sets to what the plan expects at that point (a dry run of a plan that went as
    planned).
    """
    from capplan_core.execution.scaler import ReadOnlyScaler

    built = _build_scaler(dry_run_replicas, trigger_target)
    return ReadOnlyScaler(built, why=PLANNING_POOL_WRITES) if in_planning_pool() else built


#: why a process of the planning pool refuses to write (docs/security.md, "Two work pools")
PLANNING_POOL_WRITES = (
    "CAPPLAN_POOL_ROLE=planning: this process runs in the planning work pool, which never "
    "writes to a target; apply-step and apply-due runs on the scaling pool apply steps"
)


def in_planning_pool() -> bool:
    """Whether this process is the planning pool's (``CAPPLAN_POOL_ROLE=planning``): it never
    writes to a target."""
    return get_settings().pool_role == "planning"


def refuse_writes_in_planning_pool(what: str) -> None:
    """Raise before ``what`` (a flow, task or command that applies steps) claims anything,
    when this process is the planning pool's: a run deployed to the wrong pool fails at
    once, with the reason, instead of failing the plan at its first write."""
    if in_planning_pool():
        raise RuntimeError(f"{what} refused: {PLANNING_POOL_WRITES}")


def _build_scaler(dry_run_replicas: int, trigger_target: TriggerTarget | None) -> Scaler:
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
    just before that step, and the ScaledObject of a plan that carries out hybrid also gets its
    rate target."""
    from capplan_adapters.scalers.k8s_keda import plan_trigger_target
    from capplan_core.execution.executor import planned_live_replicas

    policy = plan_store().policy_for_plan(plan)
    return scaler(
        dry_run_replicas=planned_live_replicas(plan.steps, step_id, plan.current_workers or 0),
        trigger_target=plan_trigger_target(policy, plan.details),
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
        groups.setdefault(key, (spec, []))[1].extend(p.served_queues)  # a shared pool's all
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


def authority_check(plan: StoredPlan, policy: ScalingPolicy) -> str | None:
    """Why ``plan``'s approval does not hold under its policy version (None: it does), from
    the store's approval audit rows and the approvers' keys: what every path that writes to a
    cluster checks right before the write (capplan_core/approval/authority.py)."""
    from capplan_app.secrets import approver_key
    from capplan_core.approval.authority import authority_problem
    from capplan_core.approval.signed import SIGNATURE_DETAIL
    from capplan_core.planning.stored_plan import PlanStatus

    store = plan_store()
    approvals = store.audit_events(plan_id=plan.id, action=PlanStatus.APPROVED.value)
    versions = store.policy_history(plan.policy_name) if plan.policy_name else []
    signed = any(SIGNATURE_DETAIL in a.details for a in approvals) or any(
        v.approval for v in versions
    )
    return authority_problem(
        plan,
        policy,
        approvals,
        approver_key=lambda name: approver_key(policy, name),
        store_id=store.store_id() if signed or store.approver_anchors else "",
        public_keys=store.approver_public_keys,
        versions=versions,
        anchored=bool(store.approver_anchors),
    )


def run_key_scope() -> str:
    """What scopes a Prefect idempotency key made from plan or step ids: this store's id
    (ids are per store, and two stores may share one Prefect server)."""
    return plan_store().store_id()[:16]
