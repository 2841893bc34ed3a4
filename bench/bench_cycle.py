"""Scale benchmark of one planning cycle (issue 14): one queue, 100 queues, 1,000 queues.

    .venv/bin/python bench/bench_cycle.py [--queues-embedded 100] [--queues-server 1000]
        [--baseline-every 4] [--runner processes] [--json FILE] [--parts one,embedded,server]

Synthetic queues: 7 days of 5-minute history each (bench/synthetic_queues.py), one Parquet
metrics file, policies stored with ``capplan policies apply``. Every part runs in its own
process; its peak memory is the peak resident set of its whole process tree (sampled every
0.2 s), the Prefect server's tree included.

- ``one``: a standard plan (quality, forecast, plan, simulate) for one queue in one process
  without Prefect: the first call (numba JIT, imports, GX set-up) apart, then 20 more queues.
- ``embedded``: ``capplan plan --save --metrics`` on 100 queues against Prefect's embedded
  default (no PREFECT_API_URL: a temporary server on SQLite), the CLI's defaults.
- ``server``: the same command on 1,000 queues against a real Prefect server on PostgreSQL
  (tests/prefect_pg.py: a scratch database on 127.0.0.1:5432), the plan store on PostgreSQL
  too, plan-chunk task runs on ``--runner`` (CAPPLAN_TASK_RUNNER). Then the baseline, in the
  same run: the same work (plan_many + storing each plan, no Prefect) in one process, on every
  ``--baseline-every``-th queue, scaled to all the queues.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import synthetic_queues as syn  # noqa: E402

PY = sys.executable
CAPPLAN = str(Path(PY).with_name("capplan"))


class PeakRSS:
    """Peak resident memory (MiB) of a set of process trees, sampled in a thread."""

    def __init__(self, *pids: int) -> None:
        import psutil

        self.roots = [psutil.Process(p) for p in pids]
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def add(self, pid: int) -> None:
        import psutil

        self.roots.append(psutil.Process(pid))

    def _sample(self) -> float:
        import psutil

        total = 0
        for root in self.roots:
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for p in procs:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
        return total / 2**20

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            time.sleep(0.2)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def own_peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- one queue, one process ------------------------------------------------------------------
def part_one(n_warm: int = 20) -> dict[str, Any]:
    from capplan_app.runtime import limit_blas_threads
    from capplan_core.planning.batch import plan_one

    limit_blas_threads()  # as the plan-chunk task does

    now = syn.END.to_pydatetime()
    rows = [syn.queue_rows(i) for i in range(n_warm + 1)]
    pols = [syn.policy(i) for i in range(n_warm + 1)]
    t0 = time.perf_counter()
    first = plan_one(pols[0], lambda _: rows[0], now, from_file=True)
    first_s = time.perf_counter() - t0
    times, stages = [], []
    for p, r in zip(pols[1:], rows[1:], strict=True):
        t0 = time.perf_counter()
        out = plan_one(p, lambda _, r=r: r, now, from_file=True)
        times.append(time.perf_counter() - t0)
        stages.append(out.stage_seconds)
        assert out.status == "planned", (p.queue, out.status, out.error, out.reason)
    assert first.status == "planned"
    by_stage = {k: round(statistics.median(s[k] for s in stages) * 1000, 1) for k in stages[0]}
    return {
        "first_call_ms": round(first_s * 1000),
        "warm_n": n_warm,
        "warm_median_ms": round(statistics.median(times) * 1000),
        "warm_p90_ms": round(sorted(times)[int(0.9 * len(times)) - 1] * 1000),
        "warm_max_ms": round(max(times) * 1000),
        "stage_median_ms": by_stage,
        "engine": first.decision.simulation.engine if first.decision else None,
        "peak_rss_mib": round(own_peak_mib()),
    }


# -- the baseline: the cycle's work without Prefect, one process ------------------------------
def part_baseline(metrics: str, every: int, n: int) -> dict[str, Any]:
    from capplan_app.bootstrap import plan_store
    from capplan_app.runtime import limit_blas_threads
    from capplan_core.metrics.file_source import read_metrics_file_cached
    from capplan_core.planning.batch import plan_many
    from capplan_core.planning.records import plan_draft

    limit_blas_threads()  # the same work as a plan-chunk task, which does this
    store = plan_store()
    versions = {v.name: v for v in store.list_policies()}
    pols = [versions[syn.queue_name(i)].policy for i in range(0, n, every)]
    now = syn.END.to_pydatetime()
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    frame = read_metrics_file_cached(metrics)
    groups = {str(q): g.reset_index(drop=True) for q, g in frame.groupby("queue", sort=False)}
    planned = 0
    for out in plan_many(pols, lambda p: groups[p.queue], now, from_file=True):
        assert out.status == "planned", (out.queue, out.error, out.reason)
        assert out.decision and out.forecast and out.state and out.assessment
        pid = store.create_plan(
            plan_draft(
                out.policy,
                out.decision,
                out.forecast,
                out.state,
                as_of=now,
                quality=out.assessment.quality.as_dict(),
                quality_passed=True,
                flow_run_id=f"baseline-{int(t0)}",
                policy_version=versions[out.queue].version,
            )
        )
        store.get_plan(pid)
        planned += 1
    wall = time.perf_counter() - t0
    return {
        "queues": planned,
        "wall_s": round(wall, 1),
        "cpu_s": round(time.process_time() - cpu0, 1),
        "per_queue_ms": round(wall / planned * 1000),
        "peak_rss_mib": round(own_peak_mib()),
    }


# -- a cycle through the CLI -----------------------------------------------------------------
def run_cycle(
    n: int, metrics: Path, env: dict[str, str], monitor: PeakRSS, log: Path
) -> dict[str, Any]:
    names = ",".join(syn.queue_name(i) for i in range(n))
    cmd = [CAPPLAN, "plan", "--save", "--metrics", str(metrics), "--policies", names, "--json"]
    t0 = time.perf_counter()
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        monitor.add(proc.pid)
        out, _ = proc.communicate()
    wall = time.perf_counter() - t0
    try:
        results = json.loads(out)
    except json.JSONDecodeError:
        raise SystemExit(f"capplan plan exited {proc.returncode}; see {log}") from None
    statuses: dict[str, int] = {}
    for r in results:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    return {
        "queues": n,
        "exit": proc.returncode,
        "wall_s": round(wall, 1),
        "statuses": statuses,
        "planned": statuses.get("proposed", 0),
        "failed": statuses.get("failed", 0),
        "failed_examples": [r.get("error") for r in results if r["status"] == "failed"][:3],
    }


def store_policies(env: dict[str, str], tmp: Path, n: int) -> None:
    pol = syn.write_policies(tmp / f"policies-{n}.yaml", n)
    subprocess.run(
        [CAPPLAN, "policies", "apply", str(pol), "--by", "bench"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def base_env(tmp: Path, db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "CAPPLAN_"))}
    env.update(
        CAPPLAN_DATABASE_URL=db_url,
        CAPPLAN_DATA_DIR=str(tmp),
        GX_ANALYTICS_ENABLED="false",
        MPLBACKEND="Agg",
        PREFECT_HOME=str(tmp / "prefect-home"),
        PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    return env


def part_embedded(n: int, tmp: Path) -> dict[str, Any]:
    # `capplan plan --save` plans at the wall clock: the history ends now
    metrics = syn.write_metrics(tmp / f"metrics-{n}.parquet", n, end=datetime.now(UTC))
    env = base_env(tmp, f"sqlite:///{tmp / 'embedded.db'}")
    store_policies(env, tmp, n)
    with PeakRSS(os.getpid()) as mon:
        out = run_cycle(n, metrics, env, mon, tmp / "embedded.log")
    return {
        **out,
        "prefect": "embedded default (temporary server, SQLite)",
        "runner": "threads (default)",
        "peak_rss_mib": round(mon.peak),
    }


def part_server(n: int, tmp: Path, runner: str, every: int) -> dict[str, Any]:
    from tests.prefect_pg import PG_ADMIN_URL, PrefectOnPostgres
    from tests.service_helpers import scratch_database

    metrics = syn.write_metrics(tmp / f"metrics-{n}.parquet", n, end=datetime.now(UTC))
    with (
        scratch_database(PG_ADMIN_URL, "bench_store") as store_url,
        scratch_database(PG_ADMIN_URL, "bench_prefect") as prefect_url,
    ):
        server = PrefectOnPostgres(tmp / "prefect-server", prefect_url)
        started_s = server.start()
        try:
            env = base_env(tmp, store_url)
            env.update(
                PREFECT_API_URL=server.api_url,
                CAPPLAN_TASK_RUNNER=runner,
                CAPPLAN_PLAN_CONCURRENCY="2",
            )
            store_policies(env, tmp, n)
            assert server.proc is not None
            with PeakRSS(server.proc.pid) as mon:
                out = run_cycle(n, metrics, env, mon, tmp / "server.log")
        finally:
            server.stop()
        base = subprocess.run(
            [PY, __file__, "--part-baseline", str(metrics), str(every), str(n)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        baseline = json.loads(base.stdout.strip().splitlines()[-1])
    scaled = baseline["wall_s"] * n / baseline["queues"]
    return {
        **out,
        "prefect": "server on PostgreSQL",
        "server_start_s": round(started_s, 1),
        "runner": runner,
        "peak_rss_mib": round(mon.peak),
        "baseline": baseline,
        "baseline_wall_s_all_queues": round(scaled, 1),
        "overhead_ratio": round(out["wall_s"] / scaled, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parts", default="one,embedded,server")
    ap.add_argument("--queues-embedded", type=int, default=100)
    ap.add_argument("--queues-server", type=int, default=1000)
    ap.add_argument("--baseline-every", type=int, default=4)
    ap.add_argument("--runner", default="processes", choices=["threads", "processes", "dask"])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--part-one", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--part-baseline", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.part_one:
        print(json.dumps(part_one()))
        return
    if args.part_baseline:
        metrics, every, n = args.part_baseline
        print(json.dumps(part_baseline(metrics, int(every), int(n))))
        return
    parts = args.parts.split(",")
    report: dict[str, Any] = {"cores": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-cycle-") as d:
        tmp = Path(d)
        if "one" in parts:
            done = subprocess.run(
                [PY, __file__, "--part-one"],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "GX_ANALYTICS_ENABLED": "false"},
            )
            report["one_queue"] = json.loads(done.stdout.strip().splitlines()[-1])
            print("one queue:", report["one_queue"], flush=True)
        if "embedded" in parts:
            report["embedded"] = part_embedded(args.queues_embedded, tmp)
            print("embedded:", report["embedded"], flush=True)
        if "server" in parts:
            report["server"] = part_server(
                args.queues_server, tmp, args.runner, args.baseline_every
            )
            print("server:", report["server"], flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
