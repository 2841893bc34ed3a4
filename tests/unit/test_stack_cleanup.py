"""The soak/drill stack's last sweep (bench/soak_stack.py::_kill_by_environ): every process
started with the stack's settings is stopped, and nothing else. Prefect starts each flow run in
a session of its own, so killing the worker's session alone left runs in flight alive."""

from __future__ import annotations

import os
import subprocess
import time

from bench.soak_stack import _kill_by_environ


def test_processes_with_the_stacks_settings_are_killed_and_others_are_not(tmp_path) -> None:
    marker = f"CAPPLAN_DATA_DIR={tmp_path / 'data'}"
    ours = subprocess.Popen(
        ["sleep", "60"], env={**os.environ, "CAPPLAN_DATA_DIR": str(tmp_path / "data")}
    )
    other = subprocess.Popen(
        ["sleep", "60"], env={**os.environ, "CAPPLAN_DATA_DIR": str(tmp_path / "elsewhere")}
    )
    try:
        time.sleep(0.2)
        _kill_by_environ(marker)
        assert ours.wait(timeout=10) == -9
        assert other.poll() is None
    finally:
        other.kill()
        ours.kill()
