"""Does a Prefect process worker's memory grow with the flow runs it submits? (issue 21)

    .venv/bin/python bench/worker_rss.py [--minutes 12] [--every-s 6]

The hour-long soak saw its Prefect worker grow from 150 to 207 MiB in 45 minutes (~470 flow
runs); the 30-minute one saw it flat. This isolates the worker: a Prefect server (SQLite, a
temporary home), one trivial flow deployed to two process work pools on the same interval, and
two workers, one as deployed (baseline) and one with ``MALLOC_ARENA_MAX=2`` (glibc keeps fewer
malloc arenas: a common cure for RSS that grows from fragmentation rather than a leak). Prints
each worker's RSS each minute, the flow runs each submitted, and the growth per 100 runs over
the second half; the ratio says how much the setting changes it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NOOP = """
from prefect import flow


@flow(log_prints=False)
def noop() -> int:
    return 1
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _runs_done(api_url: str, pool: str) -> int:
    """Flow runs of ``pool`` that reached a final state (completed, failed, crashed)."""
    import json
    import urllib.request

    body = {
        "work_pools": {"name": {"any_": [pool]}},
        "flow_runs": {"state": {"type": {"any_": ["COMPLETED", "FAILED", "CRASHED"]}}},
    }
    req = urllib.request.Request(
        f"{api_url}/flow_runs/count",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(json.load(resp))
    except OSError:
        return -1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=12)
    ap.add_argument("--every-s", type=int, default=6)
    args = ap.parse_args()
    # SIGTERM (and SIGINT, which a shell's background job ignores) end the run through
    # ``finally``, which stops the server and both workers
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(143))
    home = Path(tempfile.mkdtemp(prefix="worker-rss-"))
    (home / "flows").mkdir()
    (home / "flows" / "noop.py").write_text(NOOP)
    port = _port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    prefect = [sys.executable, "-m", "prefect"]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        server = subprocess.Popen(
            [*prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        procs.append(server)
        for _ in range(120):
            if subprocess.run(["curl", "-sf", f"{env['PREFECT_API_URL']}/health"],
                              capture_output=True).returncode == 0:  # fmt: skip
                break
            time.sleep(1)
        pools = {"baseline": {}, "arena2": {"MALLOC_ARENA_MAX": "2"}}
        code = (
            "import sys; from prefect import flow; "
            "f = flow.from_source(source=sys.argv[1], entrypoint='noop.py:noop'); "
            "f.deploy(name=sys.argv[2], work_pool_name=sys.argv[2], interval=int(sys.argv[3]))"
        )
        workers = {}
        for name, extra in pools.items():
            subprocess.run([*prefect, "work-pool", "create", name, "--type", "process"],
                           env=env, check=True, capture_output=True)  # fmt: skip
            subprocess.run([sys.executable, "-c", code, str(home / "flows"), name,
                            str(args.every_s)], env=env, check=True, capture_output=True)  # fmt: skip
            w = subprocess.Popen(
                [*prefect, "worker", "start", "--pool", name, "--type", "process"],
                env={**env, **extra}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
            procs.append(w)
            workers[name] = w
        samples: dict[str, list[tuple[float, float]]] = {n: [] for n in workers}
        t0 = time.monotonic()
        while time.monotonic() - t0 < args.minutes * 60:
            time.sleep(60)
            minute = (time.monotonic() - t0) / 60
            row = {n: _rss_mib(w.pid) for n, w in workers.items()}
            done = {n: _runs_done(env["PREFECT_API_URL"], n) for n in workers}
            for n, v in row.items():
                samples[n].append((minute, v))
            print(
                f"{minute:5.1f} min  "
                + "  ".join(f"{n} {v:6.1f} MiB {done[n]:5d} runs" for n, v in row.items()),
                flush=True,
            )
        runs_per_min = 60 / args.every_s
        growth = {}
        for n, pts in samples.items():
            half = pts[len(pts) // 2 :]
            (m0, r0), (m1, r1) = half[0], half[-1]
            growth[n] = (r1 - r0) / max(1e-9, (m1 - m0) * runs_per_min) * 100
            print(f"{n}: {pts[0][1]:.1f} -> {pts[-1][1]:.1f} MiB; second half "
                  f"{growth[n]:+.2f} MiB per 100 flow runs")  # fmt: skip
        base = growth["baseline"]
        print(
            f"arena2 / baseline growth: {growth['arena2'] / base:.2f}" if base else "baseline flat"
        )
    finally:
        for p in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)


if __name__ == "__main__":
    main()
