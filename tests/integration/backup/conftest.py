"""The backup tests' own PostgreSQL cluster (``capplanbackup``, port 5441), archiving its WAL
into a fresh pgBackRest repository per test; never the shared cluster. A missing pgBackRest or
PostgreSQL fails the test, never skips it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.backup_cluster import ArchivedCluster, ClusterUnavailable
from tests.service_helpers import scratch_database

BACKUP_CLUSTER = "capplanbackup"
BACKUP_PORT = 5441


@pytest.fixture
def archived() -> ArchivedCluster:
    """The private cluster, archiving into a fresh repository (stanza ``capplan``)."""
    c = ArchivedCluster(BACKUP_CLUSTER, BACKUP_PORT)
    try:
        c.ensure()
    except ClusterUnavailable as err:
        pytest.fail(str(err), pytrace=False)
    return c


@pytest.fixture
def backup_store_url(archived: ArchivedCluster) -> Iterator[str]:
    """A fresh capplan store database on the private cluster, dropped afterwards."""
    with scratch_database(archived.admin_url, "capplan_backup") as url:
        yield url
