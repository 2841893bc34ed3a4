"""Infrastructure settings: one typed object, read from ``CAPPLAN_*`` environment variables.

Read through :func:`get_settings` (cached), never at import time. Core functions take explicit
arguments, not this object; only :mod:`capplan_app.bootstrap` and the entry points use it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from capplan_core.retention import RetentionLimits


def default_data_dir() -> Path:
    """Per-user data directory (XDG), where the default SQLite store lives."""
    import os

    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "capplan"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CAPPLAN_", extra="ignore")

    database_url: SecretStr | None = Field(
        None,
        description="SQLAlchemy URL; unset means a SQLite file under data_dir (a "
        "secret: it may carry a password; never printed)",
    )
    data_dir: Path = Field(default_factory=default_data_dir)
    redis_url: SecretStr | None = Field(
        None,
        description="Redis for metrics sources and the cache (a secret: it may carry a "
        "password; never logged)",
    )
    scaler: Literal["dry-run", "kubernetes", "keda", "supervisor"] = "dry-run"
    approver_anchors: str | None = Field(
        None,
        description="approver trust anchors, 'name:public_key,...' (docs/security.md, "
        "'Four eyes on approver keys'): keys in force whatever the store holds; other keys "
        "count only when another approver's key in force endorsed them. Unset: the store's "
        "first registered key is the anchor (trust on first use)",
    )
    pool_role: Literal["all", "planning", "scaling"] = Field(
        "all",
        description="the work pool this process runs in (docs/security.md, 'Two work "
        "pools'): planning never writes to a target (its execute stage hands every step, due "
        "or not, to an apply-step run, and its scaler only reads); scaling runs apply-step "
        "and apply-due; all does both (one pool: a laptop, a test)",
    )
    kubeconfig: str | None = None
    kube_context: str | None = None
    supervisor_url: str | None = Field(
        None, description="supervisord XML-RPC: http://host:port/RPC2 or unix:///path.sock"
    )
    supervisor_username: str | None = None
    supervisor_password: SecretStr | None = None
    snapshot_ttl_s: int = Field(600, ge=1)
    simulation_job_budget: int = Field(
        2_000_000,
        ge=0,
        description="planning cycle: expected jobs (all replications) a "
        "simulate call runs job by job before the fluid level (approximate) takes over; "
        "the fast engine runs ~6 M jobs/s",
    )
    metrics_retention_days: float = Field(
        35,
        ge=1,
        le=3650,
        description="collect-metrics and prune delete queue_metrics rows older than this (days)",
    )
    plan_retention_days: float = Field(
        30,
        ge=1,
        le=36500,
        description="prune deletes plans (steps, simulation results, "
        "forecast points) and data-quality reports older than this (days); a proposed or live "
        "plan, one with open steps and each queue's newest plan are kept",
    )
    audit_retention_days: float = Field(
        365,
        ge=1,
        le=36500,
        description="prune deletes audit rows older than this (days); at least plan_retention_days",
    )
    flow_run_retention_days: float = Field(
        14,
        ge=1,
        le=36500,
        description="prune deletes Prefect's finished flow runs (completed, "
        "failed, cancelled, crashed) that ended longer ago than this (days)",
    )
    migrate_on_start: bool = Field(
        True,
        description="migrate the plan store when a process first opens it; false: "
        "operators run `capplan db upgrade`, and a process refuses a schema that is behind",
    )

    plan_chunk_size: int = Field(
        25,
        ge=1,
        le=1000,
        description="capacity-plan: at most this many queues per plan-chunk "
        "task run (docs/scale.md)",
    )
    plan_concurrency: int = Field(
        2,
        ge=1,
        le=256,
        description="capacity-plan: plan-chunk task runs at once (the task "
        "runner's max workers; Dask: the LocalCluster's worker processes)",
    )
    task_runner: Literal["threads", "processes", "dask"] = Field(
        "threads",
        description="where plan-chunk task runs execute: threads of the flow's "
        "process, worker processes on this machine, or a Dask cluster (prefect-dask)",
    )
    dask_address: str | None = Field(
        None,
        description="task_runner=dask: an existing Dask scheduler (tcp://host:8786); "
        "unset: a LocalCluster, or dask_cluster_class",
    )
    dask_cluster_class: str | None = Field(
        None,
        description="task_runner=dask without an address: the cluster class to create, "
        "e.g. dask_kubernetes.operator.KubeCluster (the 'cluster' extra)",
    )
    dask_cluster_kwargs: dict[str, object] = Field(
        default_factory=dict, description="JSON keyword arguments for that cluster class"
    )
    blas_threads: int = Field(
        1,
        ge=1,
        le=256,
        description="threads of the BLAS/OpenMP libraries (OpenBLAS) in a "
        "process that plans queues: the per-queue fits are tiny, so more threads only contend "
        "(docs/scale.md)",
    )

    actor: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="who `capplan policies apply` records "
        "as applying a version when --by is not given (default: the login name)",
    )
    fault_kill_at: Literal["", "claimed", "applying", "written"] = Field(
        "",
        description="fault injection for the reliability suite only: the executing "
        "process SIGKILLs itself at this point of a step (docs/reliability.md); empty: never",
    )

    @model_validator(mode="after")
    def _audit_outlives_plans(self) -> Settings:
        if self.audit_retention_days < self.plan_retention_days:
            raise ValueError(
                f"audit_retention_days ({self.audit_retention_days:g}) must be >= "
                f"plan_retention_days ({self.plan_retention_days:g}): audit rows are kept "
                "longer than the plans they describe"
            )
        return self

    def retention_limits(self) -> RetentionLimits:
        """The retention limits (days) as the core's :class:`RetentionLimits`."""
        from capplan_core.retention import RetentionLimits

        return RetentionLimits(
            plans_days=self.plan_retention_days,
            audit_days=self.audit_retention_days,
            metrics_days=self.metrics_retention_days,
            flow_runs_days=self.flow_run_retention_days,
        )

    @cached_property
    def approver_anchor_keys(self) -> dict[str, tuple[str, ...]]:
        """``approver_anchors`` parsed, once per settings object (``plan_store()`` hands them
        to the store on every call); a malformed entry raises ValueError naming it."""
        from capplan_core.approval.key_trust import parse_anchors

        return parse_anchors(self.approver_anchors)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url.get_secret_value()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{self.data_dir / 'capplan.db'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


@contextmanager
def settings_environment(values: dict[str, str]) -> Iterator[None]:
    """Set ``CAPPLAN_*`` (or any) environment variables for this process while the context
    lasts, with the cached settings re-read on entry and on exit (the demos' own stores, the
    live loop's scaler); the previous environment is restored afterwards."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()
