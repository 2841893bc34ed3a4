"""Infrastructure settings: one typed object, read from ``CAPPLAN_*`` environment variables.

Read through :func:`get_settings` (cached), never at import time. Core functions take explicit
arguments, not this object; only :mod:`capplan_app.bootstrap` and the entry points use it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    """Per-user data directory (XDG), where the default SQLite store lives."""
    import os

    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "capplan"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CAPPLAN_", extra="ignore")

    database_url: SecretStr | None = Field(
        None, description="SQLAlchemy URL; unset means a SQLite file under data_dir (a "
        "secret: it may carry a password; never printed)"
    )
    data_dir: Path = Field(default_factory=default_data_dir)
    redis_url: SecretStr | None = Field(
        None, description="Redis for metrics sources and the cache (a secret: it may carry a "
        "password; never logged)")
    scaler: Literal["dry-run", "kubernetes", "keda", "supervisor"] = "dry-run"
    kubeconfig: str | None = None
    kube_context: str | None = None
    supervisor_url: str | None = Field(
        None, description="supervisord XML-RPC: http://host:port/RPC2 or unix:///path.sock")
    supervisor_username: str | None = None
    supervisor_password: SecretStr | None = None
    snapshot_ttl_s: int = Field(600, ge=1)
    simulation_job_budget: int = Field(
        2_000_000, ge=0, description="planning cycle: expected jobs (all replications) a "
        "simulate call runs job by job before the fluid level (approximate) takes over; "
        "the fast engine runs ~6 M jobs/s")
    metrics_retention_days: float = Field(
        35, gt=0, le=3650, description="collect-metrics deletes queue_metrics rows older than this")
    migrate_on_start: bool = Field(
        True, description="migrate the plan store when a process first opens it; false: "
        "operators run `capplan db upgrade`, and a process refuses a schema that is behind")

    plan_chunk_size: int = Field(
        25, ge=1, le=1000, description="capacity-plan: at most this many queues per plan-chunk "
        "task run (docs/scale.md)")
    plan_concurrency: int = Field(
        2, ge=1, le=256, description="capacity-plan: plan-chunk task runs at once (the task "
        "runner's max workers; Dask: the LocalCluster's worker processes)")
    task_runner: Literal["threads", "processes", "dask"] = Field(
        "threads", description="where plan-chunk task runs execute: threads of the flow's "
        "process, worker processes on this machine, or a Dask cluster (prefect-dask)")
    dask_address: str | None = Field(
        None, description="task_runner=dask: an existing Dask scheduler (tcp://host:8786); "
        "unset: a LocalCluster, or dask_cluster_class")
    dask_cluster_class: str | None = Field(
        None, description="task_runner=dask without an address: the cluster class to create, "
        "e.g. dask_kubernetes.operator.KubeCluster (the 'cluster' extra)")
    dask_cluster_kwargs: dict[str, object] = Field(
        default_factory=dict, description="JSON keyword arguments for that cluster class")
    blas_threads: int = Field(
        1, ge=1, le=256, description="threads of the BLAS/OpenMP libraries (OpenBLAS) in a "
        "process that plans queues: the per-queue fits are tiny, so more threads only contend "
        "(docs/scale.md)")

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url.get_secret_value()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{self.data_dir / 'capplan.db'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
