"""Build adapters from settings, lazily. Nothing here connects at import time."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from capplan_core.settings import get_settings
from capplan_core.store.db import open_store
from capplan_core.store.repo import PlanStore

if TYPE_CHECKING:
    from capplan_core.execution.scaler import Scaler

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
