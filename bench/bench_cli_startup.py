"""How long each ``capplan`` command takes to answer, from a cold process (issue 26).

    .venv/bin/python bench/bench_cli_startup.py [--runs 5]

Each command runs ``--runs`` times as its own process against a fresh SQLite store; the
baseline is the bare interpreter (``python -c pass``), timed in the same run, so the ratio
says how much capplan adds on this machine at this load. Commands that run no flow are to
answer in under 1.5 s; the table says which do.

Two columns, as Python finds its modules' bytecode or not (both regardless of any
``__pycache__`` already in the tree or the environment, through ``PYTHONPYCACHEPREFIX``):

- **with .pyc**: the bytecode cache is warm (one untimed run of each command fills a private
  cache first), as for any installed capplan: pip and ``uv sync --compile-bytecode`` (the
  image's ``UV_COMPILE_BYTECODE=1``) compile at install, and a plain run writes the cache the
  first time. This is the figure the 1.5 s goal is read against.
- **no .pyc**: every module is compiled from source at every start (an empty cache that
  ``PYTHONDONTWRITEBYTECODE=1`` keeps empty): a process whose environment forbids writing
  bytecode into a tree that has none, such as a fresh ``uv sync`` without compiling run with
  that variable set. It costs about as much again as the imports themselves.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CAPPLAN = str(Path(sys.executable).parent / "capplan")
TARGET_S = 1.5
COMMANDS = (
    ["plans", "list"],
    ["plans", "show", "1"],
    ["policies", "list"],
    ["db", "current"],
    [
        "size",
        "--arrival-rate",
        "5",
        "--mean-service-time",
        "2",
        "--slo-wait",
        "10",
        "--slo-quantile",
        "0.95",
    ],
    ["approvals", "code", "1", "--decision", "approve"],
    ["--help"],
)


def _modes(tmp: str, env: dict[str, str]) -> dict[str, dict[str, str]]:
    """The environment of each column: a private bytecode cache, written or kept empty."""
    warm = {**env, "PYTHONPYCACHEPREFIX": os.path.join(tmp, "pyc")}
    warm.pop("PYTHONDONTWRITEBYTECODE", None)
    cold = {**env, "PYTHONPYCACHEPREFIX": os.path.join(tmp, "no-pyc")}
    cold["PYTHONDONTWRITEBYTECODE"] = "1"
    return {"with .pyc": warm, "no .pyc": cold}


def _time(cmd: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """The medians of ``runs`` runs of ``cmd``: wall seconds, and CPU seconds (user + system)
    of the process, which a loaded machine inflates much less than the wall time."""
    wall_s, cpu_s = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, capture_output=True, cwd=ROOT, check=False)
        wall_s.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_s.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(wall_s), statistics.median(cpu_s)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    runs = ap.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "CAPPLAN_DATA_DIR": tmp, "CAPPLAN_APPROVER_KEY": "k" * 32}
        env.pop("CAPPLAN_DATABASE_URL", None)
        modes = _modes(tmp, env)
        warm = modes["with .pyc"]
        subprocess.run([CAPPLAN, "db", "upgrade"], env=warm, capture_output=True, check=True)
        for cmd in COMMANDS:  # fills the bytecode cache, untimed
            subprocess.run([CAPPLAN, *cmd], env=warm, capture_output=True, check=False)
        base = {m: _time([sys.executable, "-c", "pass"], e, runs)[0] for m, e in modes.items()}
        print(
            f"baseline `python -c pass`: {base['with .pyc']:.2f} s with .pyc, "
            f"{base['no .pyc']:.2f} s without (medians of {runs}); load "
            f"{os.getloadavg()[0]:.1f}"
        )
        print(
            "| command | with .pyc: median s | CPU s | x baseline | no .pyc: median s | CPU s "
            f"| x baseline | < {TARGET_S} s (with .pyc) |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for cmd in COMMANDS:
            t = {m: _time([CAPPLAN, *cmd], e, runs) for m, e in modes.items()}
            (warm_s, warm_cpu_s), (cold_s, cold_cpu_s) = t["with .pyc"], t["no .pyc"]
            print(
                f"| `capplan {' '.join(cmd)}` | {warm_s:.2f} | {warm_cpu_s:.2f} "
                f"| {warm_s / base['with .pyc']:.1f} | {cold_s:.2f} | {cold_cpu_s:.2f} "
                f"| {cold_s / base['no .pyc']:.1f} | {'yes' if warm_s < TARGET_S else 'no'} |"
            )


if __name__ == "__main__":
    main()
