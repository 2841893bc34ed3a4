"""The ``choose-strategy`` flow end to end on N queues: its wall time against replaying the
same queues one after another in this process.

Run:  CAPPLAN_TASK_RUNNER=processes nice -n 10 .venv/bin/python bench/bench_choose_flow.py \
          [--queues 20] [--evidence-days 1]

A Prefect server is started for the run (``prefect server start`` on its own SQLite, as a
deployment has one: a process pool's workers then report to it instead of each starting an
ephemeral server). A fresh SQLite store in a temporary directory gets N copies of the demo's ``thumbnails``
history (each its own queue, shifted to end a minute ago) and N ``scaling.strategy: auto``
policies on ScaledObjects. Then, in one process:

- **baseline**: each queue's evidence period replayed with ``run_backtest``, one after
  another (what the work is, with no flow and no parallelism);
- **first run**: the flow (an ephemeral Prefect server, the task runner of
  ``CAPPLAN_TASK_RUNNER``), every queue's whole period replayed;
- **second run**: the flow again at once: every queue keeps its stretches and replays
  nothing, so this is the flow's own cost per queue (reads, the audit row, the artifact).

It prints the seconds of each, the ratio *baseline / first run* (what the task runner buys
on this machine's cores) and the second run's seconds per queue.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@contextmanager
def prefect_server(home: Path) -> Iterator[None]:
    """``prefect server start`` on a free port; its URL in this process's environment (and
    so in every task-runner process it starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    os.environ.update(
        {
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_UI_ENABLED": "false",
        }
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        import httpx

        for _ in range(120):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        else:
            raise RuntimeError("the Prefect server did not start in 120 s")
        yield
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--queues", type=int, default=20)
    ap.add_argument("--evidence-days", type=float, default=1.0)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="capplan-choose-"))
    os.environ["CAPPLAN_DATABASE_URL"] = f"sqlite:///{tmp / 'store.db'}"
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

    import pandas as pd

    from capplan_app.bootstrap import DEMO_METRICS, plan_store
    from capplan_app.settings import get_settings
    from capplan_core.backtest.run import run_backtest
    from capplan_core.metrics.file_source import read_metrics_file
    from capplan_core.metrics.history import history_span
    from capplan_core.metrics.transfer import frame_to_store_rows
    from capplan_core.policy import parse_policies
    from flows.choose_strategy import choose_strategy

    store = plan_store()
    frame = read_metrics_file(DEMO_METRICS)
    frame = frame[frame["queue"] == "thumbnails"].copy()
    frame["timestamp"] += (datetime.now(UTC) - timedelta(minutes=1)) - frame["timestamp"].max()
    names = [f"q{k:04d}" for k in range(args.queues)]
    for name in names:
        store.record_metrics(frame_to_store_rows(frame.assign(queue=name), source="bench"))
    policies = parse_policies(
        {
            "policies": [
                {
                    "name": name,
                    "queue": name,
                    "mode": "advisory",
                    "target": {"kind": "scaledobject", "namespace": "bench", "name": name},
                    "slo": {"wait_p95_seconds": 10},
                    "scaling": {"min_workers": 1, "max_workers": 40},
                    "forecast": {"interval_minutes": 15, "seasonality": ["daily"]},
                }
                for name in names
            ]
        }
    )
    store.apply_policies(policies, actor="bench")
    runner = get_settings().task_runner
    print(f"{args.queues} queues, {args.evidence_days} day(s) of evidence, {runner} runner")

    now = datetime.now(UTC)
    end = pd.Timestamp(now).floor("15min")
    start = end - pd.Timedelta(days=args.evidence_days)
    t0 = time.perf_counter()
    for pol in policies:
        rows = store.metrics_history(pol.queue, start - history_span(pol.forecast), end)
        run_backtest(rows, pol, start=start, end=end)
    baseline_s = time.perf_counter() - t0
    print(f"baseline, one after another: {baseline_s:.1f} s", flush=True)

    with prefect_server(tmp / "prefect"):
        t0 = time.perf_counter()
        first = choose_strategy(evidence_days=args.evidence_days)
        first_s = time.perf_counter() - t0
        assert len(first) == args.queues, first
        print(f"first run (every period replayed): {first_s:.1f} s", flush=True)

        t0 = time.perf_counter()
        second = choose_strategy(evidence_days=args.evidence_days)
        second_s = time.perf_counter() - t0
    replayed = sum(r["replayed_hours"] for r in second)
    print(
        f"second run (kept stretches, {replayed:.2f} h replayed): {second_s:.1f} s, "
        f"{second_s / args.queues:.2f} s a queue"
    )
    print(f"ratio baseline / first run: {baseline_s / first_s:.2f}x")


if __name__ == "__main__":
    main()
