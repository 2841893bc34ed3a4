"""Fixtures for the metrics sources: the real Redis (db 7, keys tagged per test), worker
processes, a real Prometheus. A missing Redis fails (never skips)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_lib

from tests.service_helpers import delete_tagged, metrics_redis_url, wait_until

HERE = Path(__file__).parent
REDIS_METRICS_URL = metrics_redis_url()  # database 7, or this xdist worker's own


def require_redis(host: str = "127.0.0.1", port: int = 6379) -> None:
    with socket.socket() as s:
        s.settimeout(2)
        if s.connect_ex((host, port)) != 0:
            pytest.fail(f"Redis is not reachable at {host}:{port}; start it", pytrace=False)


@pytest.fixture
def tid() -> str:
    """A random tag in every key this test creates."""
    return f"cpt{uuid.uuid4().hex[:8]}"


@pytest.fixture
def redis_url() -> str:
    require_redis()
    return REDIS_METRICS_URL


@pytest.fixture
def redis(redis_url: str, tid: str) -> Iterator[redis_lib.Redis]:
    """Connection to the test db; afterwards every key containing ``tid`` is deleted."""
    r = redis_lib.Redis.from_url(redis_url)
    wait_until(lambda: bool(r.ping()), 10, "Redis PING")
    yield r
    delete_tagged(r, tid)
    r.close()


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen]]:
    """Child processes to stop (SIGTERM, then SIGKILL) after the test."""
    procs: list[subprocess.Popen] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def spawn_python(code: str) -> subprocess.Popen:
    """A Python child that can import the test helpers and capplan."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.getcwd()])}
    return subprocess.Popen([sys.executable, "-c", code], env=env)
