"""``capplan demo --live`` ends cleanly on SIGTERM and Ctrl-C, and a SIGKILLed demo leaves no
pool behind (issue 21: SIGTERM printed ``TerminationSignal`` and the demo kept running; after
SIGKILL its supervisord had started two more rq workers, which were left behind).

Each case starts the demo as a new user would (its own data dir, a temporary Prefect server),
after an earlier run (whose policy, in the demo's store, names the same supervisord group),
signals it, and then looks for any supervisord or rq worker process of it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from capplan_app.live.harness import orphans
from tests.integration.live.conftest import LIVE_REDIS_URL, require_redis
from tests.service_helpers import delete_tagged

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

CAPPLAN = str(Path(sys.executable).parent / "capplan")


class Demo:
    """The demo as a child process, its output collected line by line."""

    def __init__(self, tmp: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
        env.update(
            {
                "CAPPLAN_DATA_DIR": str(tmp),
                "PREFECT_HOME": str(tmp / "prefect"),
                "CAPPLAN_REDIS_URL": LIVE_REDIS_URL,
                "COLUMNS": "400",
            }
        )
        env.pop("CAPPLAN_DATABASE_URL", None)
        self.proc = subprocess.Popen(
            [CAPPLAN, "demo", "--live"],
            cwd=tmp,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout_s: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            m = re.search(pattern, self.text)
            if m:
                return m
            assert self.proc.poll() is None, f"the demo exited early:\n{self.text}"
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} within {timeout_s} s:\n{self.text}")


def _supervisord_of(pid: int) -> list[int]:
    out = subprocess.run(
        ["ps", "-ww", "-eo", "pid,ppid,args"], capture_output=True, text=True, check=True
    ).stdout
    return [
        int(line.split()[0])
        for line in out.splitlines()[1:]
        if int(line.split()[1]) == pid and "supervisord" in line
    ]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    st = subprocess.run(
        ["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True
    ).stdout.strip()
    return bool(st) and not st.startswith("Z")


def _earlier_run(tmp: Path) -> None:
    """The demo's store as an earlier run left it: a policy on the same supervisord group."""
    from capplan_adapters.store.db import open_store
    from capplan_app.live.scenario import LoopSpec, live_policy
    from capplan_core.policy import ScalingPolicy

    (tmp / "demo").mkdir()
    policy = live_policy(LoopSpec(), "q_liveearlier", "rqw", LIVE_REDIS_URL)
    open_store(f"sqlite:///{tmp / 'demo' / 'live.db'}").apply_policies(
        [ScalingPolicy.model_validate(policy)], actor="an earlier run"
    )


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    r = require_redis()
    _earlier_run(tmp_path)  # a second run in a row must start from an empty store
    d = Demo(tmp_path)
    try:
        yield d
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
        tids = re.findall(r"queue q_(live[0-9a-f]{8})", d.text)
        for tid in tids:
            for line in orphans(tid):  # never leave a pool behind, even when a test failed
                os.kill(int(line.split()[0]), signal.SIGKILL)
            delete_tagged(r, tid)
        r.close()


@pytest.mark.parametrize(
    "sig, after, twice",
    [
        (signal.SIGTERM, r"supervisord group", False),  # during the first planning cycle
        (signal.SIGINT, r"plan \d+ \w+: ", False),  # Ctrl-C once plans are being made
        (signal.SIGTERM, r"supervisord group", True),  # again: stop without the cycle
    ],
)
def test_a_signal_ends_the_demo_and_stops_its_pool(
    demo: Demo, sig: signal.Signals, after: str, twice: bool
) -> None:
    tid = demo.wait_for(r"queue q_(live[0-9a-f]{8})", 120).group(1)
    demo.wait_for(after, 180)
    sups = _supervisord_of(demo.proc.pid)
    assert len(sups) == 1, sups
    assert orphans(tid), "the demo's rq workers run"
    t0 = time.monotonic()
    demo.proc.send_signal(sig)
    if twice:
        demo.wait_for(f"{sig.name}: stopping", 10)
        demo.proc.send_signal(sig)
    rc = demo.proc.wait(timeout=150)
    took = time.monotonic() - t0
    demo._reader.join(5)
    print(
        f"\n{sig.name}{' twice' if twice else ''}: the demo ended in {took:.1f} s with "
        f"exit code {rc}"
    )
    assert rc == 128 + sig, demo.text
    assert f"{sig.name}: stopping" in demo.text
    assert (f"stopped at once by {sig.name}" if twice else f"stopped by {sig.name}") in demo.text
    assert "Traceback" not in demo.text, demo.text
    assert not _alive(sups[0]), "supervisord still runs"
    assert orphans(tid) == [], orphans(tid)
    # and no Redis key of its queue is left (RQ keeps an emptied queue's registries for ever)
    r = require_redis()
    assert list(r.scan_iter(match=f"*{tid}*")) == []
    assert not [m for m in r.smembers("rq:queues") if tid.encode() in m]


def test_a_killed_demo_leaves_no_pool_behind(demo: Demo) -> None:
    tid = demo.wait_for(r"queue q_(live[0-9a-f]{8})", 120).group(1)
    demo.wait_for(r"workers RUNNING: 2", 60)
    sups = _supervisord_of(demo.proc.pid)
    assert len(sups) == 1 and orphans(tid), sups
    demo.proc.kill()  # SIGKILL: no handler, no finally
    demo.proc.wait(timeout=10)
    # supervisord gets its parent-death signal and stops the workers (a warm shutdown)
    deadline = time.monotonic() + 40
    while (_alive(sups[0]) or orphans(tid)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _alive(sups[0]), "supervisord outlived the killed demo"
    assert orphans(tid) == [], orphans(tid)
