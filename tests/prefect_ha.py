"""Prefect served by two API servers behind HAProxy, as Prefect's self-hosted HA guide says.

* two ``prefect server start --no-services`` API servers (UI included), each in its own
  session with its own ``PREFECT_HOME``, on one PostgreSQL database;
* the background services apart: ``prefect server services start``;
* Redis (``prefect-redis``) as messaging broker, cache, causal ordering, lease storage, and
  Docket's store: a private ``redis-server`` without persistence;
* the schema migrated once, apart (``prefect server database upgrade -y``), and
  ``PREFECT_API_DATABASE_MIGRATE_ON_START=false`` everywhere;
* Debian's HAProxy in front, health-checking ``/api/health``
  (``deployments/prefect-ha/haproxy.cfg``, the environment from ``prefect-ha.env``).

Used by the HA test (tests/integration/ha/) and the restore drill (bench/dr_drill.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from tests.integration.faults.restart_services import PrivateRedis, wait_port
from tests.prefect_pg import asyncpg_url
from tests.service_helpers import PrefectServerProcess, answers_ok, free_port

ROOT = Path(__file__).resolve().parents[1]
HA_DIR = ROOT / "deployments" / "prefect-ha"
PREFECT = Path(sys.executable).with_name("prefect")


def guide_env(database_url: str, redis_port: int, proxy_api_url: str) -> dict[str, str]:
    """``deployments/prefect-ha/prefect-ha.env`` with this machine's hosts filled in."""
    env: dict[str, str] = {}
    for line in (HA_DIR / "prefect-ha.env").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    env.update(
        {
            "PREFECT_API_DATABASE_CONNECTION_URL": asyncpg_url(database_url),
            "PREFECT_REDIS_MESSAGING_HOST": "127.0.0.1",
            "PREFECT_REDIS_MESSAGING_PORT": str(redis_port),
            "PREFECT_SERVER_DOCKET_URL": f"redis://127.0.0.1:{redis_port}/1",
            "PREFECT_UI_API_URL": proxy_api_url,
        }
    )
    return env


@dataclass
class PrefectHA:
    workdir: Path
    database_url: str  # the Prefect database (SQLAlchemy URL)
    n_servers: int = 2
    redis: PrivateRedis = field(default_factory=PrivateRedis)
    servers: list[PrefectServerProcess] = field(default_factory=list)
    services: subprocess.Popen[bytes] | None = None
    haproxy: subprocess.Popen[bytes] | None = None
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    @property
    def stats_socket(self) -> Path:
        return self.workdir / "haproxy.sock"

    def env(self) -> dict[str, str]:
        return {
            **guide_env(self.database_url, self.redis.port, self.api_url),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "WARNING",
        }

    # -- start -----------------------------------------------------------------------------
    def start(self, timeout_s: float = 240) -> dict[str, float]:
        """Redis, the migration, the API servers, the services and HAProxy; seconds each."""
        if shutil.which("haproxy") is None and not Path("/usr/sbin/haproxy").exists():
            raise RuntimeError("haproxy is not installed (bin/services installs it)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        took: dict[str, float] = {}
        t0 = time.monotonic()
        self.redis.start()
        env = {**os.environ, **self.env(), "PREFECT_HOME": str(self.workdir / "migrate")}
        env.pop("PREFECT_API_URL", None)
        subprocess.run(
            [str(PREFECT), "server", "database", "upgrade", "-y"],
            env=env,
            check=True,
            capture_output=True,
            timeout=timeout_s,
        )
        took["migrate_s"] = round(time.monotonic() - t0, 1)
        for i in range(self.n_servers):
            server = PrefectServerProcess(
                self.workdir / f"api{i + 1}",
                kill_signal=9,
                args=("--no-services",),
                env={
                    **self.env(),
                    "PREFECT_UI_ENABLED": "true",
                    "PREFECT_SERVER_UI_ENABLED": "true",
                },
            )
            self.servers.append(server)
            took[f"api{i + 1}_s"] = round(server.start(timeout_s), 1)
        self.start_services()
        self._start_haproxy()
        deadline = time.monotonic() + timeout_s
        while not answers_ok(f"{self.api_url}/health", timeout_s=2):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the proxy {self.url} does not answer")
            time.sleep(0.2)
        took["total_s"] = round(time.monotonic() - t0, 1)
        return took

    def start_services(self) -> None:
        env = {**os.environ, **self.env(), "PREFECT_HOME": str(self.workdir / "services")}
        env.pop("PREFECT_API_URL", None)
        (self.workdir / "services").mkdir(exist_ok=True)
        log = (self.workdir / "services.log").open("ab")
        self.services = subprocess.Popen(
            [str(PREFECT), "server", "services", "start"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _start_haproxy(self) -> None:
        servers = "\n".join(
            f"    server api{i + 1} 127.0.0.1:{s.port} check" for i, s in enumerate(self.servers)
        )
        cfg = self.workdir / "haproxy.cfg"
        cfg.write_text(
            Template((HA_DIR / "haproxy.cfg").read_text()).substitute(
                stats_socket=self.stats_socket, bind=f"127.0.0.1:{self.port}", servers=servers
            )
        )
        check = subprocess.run([_haproxy(), "-c", "-f", str(cfg)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"haproxy -c refused {cfg}: {check.stdout}{check.stderr}")
        log = (self.workdir / "haproxy.log").open("ab")
        self.haproxy = subprocess.Popen(
            [_haproxy(), "-db", "-f", str(cfg)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_port(self.port, timeout_s=30)

    # -- faults ----------------------------------------------------------------------------
    def kill_server(self, i: int) -> None:
        """SIGKILL API server ``i`` (0-based) and its whole session: a crash."""
        self.servers[i].stop()
        wait_port(self.servers[i].port, up=False)

    def restart_server(self, i: int, timeout_s: float = 300) -> float:
        """Start API server ``i`` again on its port; seconds until its /api/health answered."""
        return self.servers[i].start(timeout_s)

    def backends(self) -> dict[str, str]:
        """HAProxy's view: ``{"api1": "UP", "api2": "DOWN", ...}``."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(str(self.stats_socket))
            s.sendall(b"show stat\n")
            raw = b""
            while chunk := s.recv(65536):
                raw += chunk
        rows = [
            line.split(",")
            for line in raw.decode().splitlines()
            if line and not line.startswith("#")
        ]
        return {
            r[1]: r[17].split(" ")[0]
            for r in rows
            if r[0] == "prefect_api" and r[1].startswith("api")
        }

    # -- stop ------------------------------------------------------------------------------
    def stop(self) -> None:
        for proc in (self.haproxy, self.services):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=30)
        self.haproxy = self.services = None
        for server in self.servers:
            server.stop()
        self.redis.stop()


def _haproxy() -> str:
    return shutil.which("haproxy") or "/usr/sbin/haproxy"
