"""Helpers the integration tests share: free ports, waiting, scratch PostgreSQL databases,
Redis cleanup by test tag, and a real Prometheus server."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import redis as redis_lib
from sqlalchemy import create_engine, text


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(pred: Callable[[], bool], timeout_s: float, what: str, *,
               poll_s: float = 0.1) -> None:
    """Poll ``pred`` every ``poll_s`` seconds; fail the test if it is not true in ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(poll_s)
    pytest.fail(f"timed out after {timeout_s}s waiting for {what}")


def answers_ok(url: str, *, timeout_s: float) -> bool:
    """True when a GET of ``url`` answers 200; False when it answers otherwise or not at all."""
    try:
        return httpx.get(url, timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


def _admin_sql(admin_url: str, sql: str) -> None:
    # a fresh engine each time: the server may have restarted since the last statement
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(sql))
    finally:
        admin.dispose()


@contextmanager
def scratch_database(admin_url: str, prefix: str) -> Iterator[str]:
    """A new, empty database on the server of ``admin_url``; yields its URL, drops it after."""
    from capplan_core.store.db import open_store

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    _admin_sql(admin_url, f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        open_store.cache_clear()  # no cached store keeps a connection to the dropped database
        _admin_sql(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def delete_tagged(r: redis_lib.Redis, tid: str) -> None:
    """Delete every Redis key containing ``tid`` and its members of the RQ registry sets."""
    for key in list(r.scan_iter(match=f"*{tid}*", count=1000)):
        r.delete(key)
    for set_key in ("rq:queues", "rq:workers"):
        members = [m for m in r.smembers(set_key) if tid.encode() in m]
        if members:
            r.srem(set_key, *members)


def binary(name: str) -> str:
    """The path of an installed program; fails the test, naming the package, when missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found (bin/services installs it: apt-get install -y prometheus)")
    return path


@contextmanager
def prometheus_scraping(target: str, tmp: Path) -> Iterator[str]:
    """A real Prometheus scraping ``target`` (host:port) every second; yields its URL."""
    tmp.mkdir(parents=True, exist_ok=True)
    cfg = tmp / "prometheus.yml"
    cfg.write_text(f"""global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: capplan
    static_configs: [{{targets: ['{target}']}}]
""")
    port = free_port()
    log = (tmp / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [binary("prometheus"), f"--config.file={cfg}", f"--storage.tsdb.path={tmp / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers_ok(f"{url}/-/ready", timeout_s=1), 60, "Prometheus ready",
                   poll_s=0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()
