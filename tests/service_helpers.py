"""Helpers the integration tests share: free ports, waiting, scratch PostgreSQL databases,
Redis cleanup by test tag, and a real Prometheus server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import redis as redis_lib
from sqlalchemy import create_engine, text


def metrics_redis_url() -> str:
    """The Redis database of the collectors' tests: ``CAPPLAN_TEST_REDIS_METRICS``, else
    database 7, or 7 + n on pytest-xdist worker ``gw<n>``, so parallel workers never share
    RQ's registries."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    default = f"redis://127.0.0.1:6379/{7 + int(worker or 0)}"
    return os.environ.get("CAPPLAN_TEST_REDIS_METRICS", default)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrefectServerProcess:
    """``prefect server start`` as a subprocess in its own session, with its own
    ``PREFECT_HOME`` (and so its own SQLite database unless ``env`` names another); the one
    launcher behind the tests' private servers (the restart tests', the PostgreSQL-backed one,
    the one with API auth). ``start()`` waits for ``/api/health``; ``stop()`` signals the whole
    session (the server and its workers): SIGTERM, then SIGKILL after 30 s, or SIGKILL at once
    (``kill_signal=9``, a crash)."""

    def __init__(
        self,
        home: Path,
        *,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        drop_env: tuple[str, ...] = (),
        kill_signal: int = 15,
    ) -> None:
        self.home = home
        self.port = free_port()
        self.env = {
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
            **(env or {}),
        }
        self.args = args
        self.drop_env = ("PREFECT_API_URL", *drop_env)
        self.kill_signal = kill_signal
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    def start(self, timeout_s: float = 180) -> float:
        """Start the server; seconds until ``/api/health`` answered 200."""
        self.home.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        env = {**os.environ, "PREFECT_HOME": str(self.home), **self.env}
        for name in self.drop_env:
            env.pop(name, None)
        log = (self.home / "server.log").open("ab")
        prefect = Path(sys.executable).with_name("prefect")
        self.proc = subprocess.Popen(
            [
                str(prefect),
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                *self.args,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prefect server exited: see {self.home / 'server.log'}")
            if answers_ok(f"{self.api_url}/health", timeout_s=2):
                return time.monotonic() - t0
            time.sleep(0.5)
        raise TimeoutError(
            f"prefect server not healthy within {timeout_s:.0f} s: see {self.home / 'server.log'}"
        )

    def stop(self) -> None:
        if self.proc is None:
            return
        os.killpg(self.proc.pid, self.kill_signal)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait(timeout=30)
        self.proc = None


def rebind_prefect_workers() -> None:
    """Drain and drop this process's Prefect event and log workers. They are singletons bound
    to the API they first talked to (the session's test server), and Prefect records task runs
    from their events: call this whenever this process switches Prefect servers, so fresh
    ones bind to the current server, and before a server stops, so it gets what was sent."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    EventsWorker.drain_all(timeout=30)
    APILogWorker.drain_all(timeout=30)


def wait_until(
    pred: Callable[[], bool], timeout_s: float, what: str, *, poll_s: float = 0.1
) -> None:
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
    from capplan_adapters.store.db import open_store

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
        [
            binary("prometheus"),
            f"--config.file={cfg}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: answers_ok(f"{url}/-/ready", timeout_s=1), 60, "Prometheus ready", poll_s=0.2
        )
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()
