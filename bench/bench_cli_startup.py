"""How long each ``capplan`` command takes to answer, from a cold process (issue 26).

    .venv/bin/python bench/bench_cli_startup.py [--runs 5]

Each command runs ``--runs`` times as its own process against a fresh SQLite store; the
baseline is the bare interpreter (``python -c pass``), timed in the same run, so the ratio
says how much capplan adds on this machine at this load. Commands that run no flow are to
answer in under 1.5 s; the table says which do.
"""

from __future__ import annotations

import argparse
import os
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


def _time(cmd: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, capture_output=True, cwd=ROOT, check=False)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    runs = ap.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "CAPPLAN_DATA_DIR": tmp, "CAPPLAN_APPROVER_KEY": "k" * 32}
        env.pop("CAPPLAN_DATABASE_URL", None)
        subprocess.run([CAPPLAN, "db", "upgrade"], env=env, capture_output=True, check=True)
        base = _time([sys.executable, "-c", "pass"], env, runs)
        print(
            f"baseline `python -c pass`: {base:.2f} s (median of {runs}); load "
            f"{os.getloadavg()[0]:.1f}"
        )
        print(f"| command | median s | x baseline | < {TARGET_S} s |")
        print("|---|---|---|---|")
        for cmd in COMMANDS:
            t = _time([CAPPLAN, *cmd], env, runs)
            flow = cmd[0] in ("--help",)
            mark = "—" if flow else ("yes" if t < TARGET_S else "no")
            print(f"| `capplan {' '.join(cmd)}` | {t:.2f} | {t / base:.1f} | {mark} |")


if __name__ == "__main__":
    main()
