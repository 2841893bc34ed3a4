"""Fixtures for the metrics sources: the real Redis (db 7, keys tagged per test), worker
processes, a real Prometheus. A missing Redis fails (never skips)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis as redis_lib

HERE = Path(__file__).parent
REDIS_METRICS_URL = os.environ.get("CAPPLAN_TEST_REDIS_METRICS", "redis://127.0.0.1:6379/7")


def require_redis(host: str = "127.0.0.1", port: int = 6379) -> None:
    with socket.socket() as s:
        s.settimeout(2)
        if s.connect_ex((host, port)) != 0:
            pytest.fail(f"Redis is not reachable at {host}:{port}; start it", pytrace=False)


def wait_until(pred: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout_s}s waiting for {what}")


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
    for key in list(r.scan_iter(match=f"*{tid}*", count=1000)):
        r.delete(key)
    for set_key in ("rq:queues", "rq:workers"):
        members = [m for m in r.smembers(set_key) if tid.encode() in m]
        if members:
            r.srem(set_key, *members)
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
