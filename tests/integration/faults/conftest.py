"""Fixtures the apply-due fault tests share: the Kubernetes API double, the PostgreSQL plan
store and the process forker, one of each per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from exec_harness import Forker
from k8s_double import K8sApiDouble

from capplan_adapters.store.db import open_store
from capplan_adapters.store.repo import PlanStore


@pytest.fixture(scope="module")
def double() -> Iterator[K8sApiDouble]:
    k8s = K8sApiDouble()
    k8s.start()
    yield k8s
    k8s.stop()


@pytest.fixture(scope="module")
def store(pg_url: str) -> PlanStore:
    return open_store(pg_url)


@pytest.fixture(scope="module")
def forker() -> Iterator[Forker]:
    f = Forker()
    yield f
    f.close()
