"""The backup tests' own PostgreSQL cluster (``capplanbackup``, port 5441), archiving its WAL
into a fresh pgBackRest repository per test; never the shared cluster. A missing pgBackRest or
PostgreSQL fails the test, never skips it."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator

import pytest

from tests.backup_cluster import BASE, ArchivedCluster, ClusterUnavailable
from tests.service_helpers import scratch_database

BACKUP_CLUSTER = "capplanbackup"
BACKUP_PORT = 5441


@pytest.fixture
def archived() -> Iterator[ArchivedCluster]:
    """The private cluster, archiving into a fresh repository (stanza ``capplan``), held by
    this test alone: the backup test files run on different xdist workers at once, and two
    tests remaking one repository (or destroying the cluster) under each other fail with
    pgBackRest's lock and info-file errors. An exclusive file lock serializes them."""
    BASE.mkdir(parents=True, exist_ok=True)
    with (BASE / f"{BACKUP_CLUSTER}.test-lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, after the test
        c = ArchivedCluster(BACKUP_CLUSTER, BACKUP_PORT)
        try:
            c.ensure()
        except ClusterUnavailable as err:
            pytest.fail(str(err), pytrace=False)
        yield c


@pytest.fixture
def backup_store_url(archived: ArchivedCluster) -> Iterator[str]:
    """A fresh capplan store database on the private cluster, dropped afterwards."""
    with scratch_database(archived.admin_url, "capplan_backup") as url:
        yield url
