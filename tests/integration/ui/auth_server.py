"""A private Prefect server with its API auth on (Prefect 3 server basic auth) and its UI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.service_helpers import free_port


class AuthPrefectServer:
    """``prefect server start`` with ``PREFECT_SERVER_API_AUTH_STRING``: every API call (the
    UI's included) needs that ``user:password`` as HTTP basic auth."""

    def __init__(self, home: Path, auth_string: str) -> None:
        self.home, self.auth_string = home, auth_string
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    def start(self, timeout_s: float = 180) -> None:
        env = {**os.environ, "PREFECT_HOME": str(self.home),
               "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "true",
               "PREFECT_UI_API_URL": self.api_url,
               "PREFECT_SERVER_API_AUTH_STRING": self.auth_string}
        env.pop("PREFECT_API_URL", None)
        env.pop("PREFECT_API_AUTH_STRING", None)
        log = (self.home / "server.log").open("ab")
        prefect = Path(sys.executable).with_name("prefect")
        self.proc = subprocess.Popen(
            [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prefect server exited: see {self.home / 'server.log'}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"prefect server not healthy within {timeout_s:.0f} s")

    def stop(self) -> None:
        if self.proc is not None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(timeout=30)
            self.proc = None
