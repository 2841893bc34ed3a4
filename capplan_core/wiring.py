"""Build adapters from settings, lazily. Nothing here connects at import time."""

from __future__ import annotations

from pathlib import Path

from capplan_core.settings import get_settings
from capplan_core.store.db import open_store
from capplan_core.store.repo import PlanStore

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO_ROOT / "data" / "demo"
DEMO_METRICS = DEMO_DIR / "metrics.csv.gz"
DEMO_POLICIES = DEMO_DIR / "policies.yaml"


def get_store() -> PlanStore:
    """The plan store named by ``CAPPLAN_DATABASE_URL`` (SQLite under the data dir if unset)."""
    return open_store(get_settings().resolved_database_url())
