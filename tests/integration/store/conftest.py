"""The store tests' store: SQLite and the real PostgreSQL (``store_url``), seeded with the
``emails`` policy."""

from __future__ import annotations

import pytest

from capplan_adapters.store.repo import PlanStore
from tests.integration.store.plan_seed import seeded_store


@pytest.fixture
def store(store_url: str) -> PlanStore:
    return seeded_store(store_url)
