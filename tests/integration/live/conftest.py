"""A real supervisord running a group of real ``rq worker`` processes on the local Redis.

Each test gets its own supervisord (config in ``tmp_path``, an ``[inet_http_server]`` on a free
localhost port with basic auth), its own RQ queue name on Redis db 9 (``CAPPLAN_TEST_REDIS_LIVE``)
and, afterwards, no leftover processes or Redis keys. A missing Redis fails, never skips.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_lib

from capplan_app.live.harness import (
    HarnessError,
    Supervisord,
    start_supervisord,
    stop_supervisord,
)
from tests.service_helpers import delete_tagged

LIVE_REDIS_URL = os.environ.get("CAPPLAN_TEST_REDIS_LIVE", "redis://127.0.0.1:6379/9")


def require_redis() -> redis_lib.Redis:
    r = redis_lib.Redis.from_url(LIVE_REDIS_URL, socket_connect_timeout=2)
    try:
        r.ping()
    except redis_lib.ConnectionError:
        pytest.fail(
            f"Redis is not reachable at {LIVE_REDIS_URL}; start it (bin/services)", pytrace=False
        )
    return r


@pytest.fixture
def tid() -> str:
    return f"live{uuid.uuid4().hex[:8]}"


@pytest.fixture
def live_redis(tid: str) -> Iterator[redis_lib.Redis]:
    """Connection to the live-test db; afterwards every key and set member with ``tid`` goes."""
    r = require_redis()
    yield r
    delete_tagged(r, tid)
    r.close()


@pytest.fixture
def supervisord(tmp_path: Path, tid: str, live_redis: redis_lib.Redis) -> Iterator[Supervisord]:
    """A supervisord with group ``rqw``: 6 rq workers on queue ``q_<tid>``, none started."""
    try:
        sup = start_supervisord(tmp_path, tid, LIVE_REDIS_URL, numprocs=6)
    except HarnessError as err:
        pytest.fail(str(err), pytrace=False)
    try:
        yield sup
    finally:
        left = stop_supervisord(sup)
        if left:
            pytest.fail(f"orphan processes after supervisord stopped (now killed): {left}")
