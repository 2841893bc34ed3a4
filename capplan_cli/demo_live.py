"""``capplan demo --live``: the closed loop on real ``rq worker`` processes, as it happens.

supervisord (started here, in a temporary directory) runs 8 workers, 2 of them up; a load
generator enqueues 2 jobs/s and steps to 8 jobs/s at the next minute boundary about a minute
away; three earlier days with that step are written into the store; metrics are collected every
5 s and ``capacity-plan`` runs in ``auto`` mode every 15 s, from the store, scaling the group
through the supervisor scaler. Everything stops on its own after ~2-3 minutes.
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from capplan_cli.output import console, fail, print_json

DEFAULT_REDIS = "redis://127.0.0.1:6379/9"


def _line(kind: str, data: dict[str, Any], started: float) -> str | None:
    t = f"[dim]{time.time() - started:6.1f}s[/]"
    if kind == "start":
        return (f"{t} supervisord group [bold]{data['group']}[/] ({data['workers']} workers up), "
                f"queue {data['queue']}; {data['backfilled']} rows of earlier days in the store; "
                f"the load steps 2 → 8 jobs/s at {data['step_at']}")
    if kind == "workers":
        return f"{t} [bold cyan]workers RUNNING: {data['running']}[/]"
    if kind == "measured":
        wait = data.get("wait_p95_s")
        rate = data.get("arrival_rate")
        return (f"{t} measured: arrivals {rate if rate is None else f'{rate:.2f}'} jobs/s, "
                f"backlog {data.get('backlog')}, workers {data.get('workers')}, p95 wait "
                f"{'—' if wait is None else f'{wait:.2f} s'}")
    if kind == "plan":
        steps = ", ".join(f"{at[11:19]} {a}→{b} ({st})"
                          for at, a, b, st in data["steps"]) or "no change"
        return (f"{t} [green]plan {data['id']}[/] {data['status']}: {data['from']} → "
                f"{data['to']} workers; steps: {steps}"
                + (f" [red]{data['reason']}[/]" if data.get("reason") else ""))
    if kind == "collect-error":
        return f"{t} [red]collect: {data['error']}[/]"
    if kind == "done":
        return (f"{t} p95 wait of jobs after the step: {data['wait_p95_s']:.2f} s "
                f"({data['jobs_measured']} jobs)")
    return None


def run_live_demo(*, as_json: bool) -> None:
    # what happens is printed below; Prefect's per-task INFO lines and its temporary server's
    # telemetry would drown it (set before Prefect is first imported; explicit values win)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from capplan_app.live.harness import HarnessError
    from capplan_app.live.loop import ClosedLoop, LoopSpec

    redis_url = os.environ.get("CAPPLAN_REDIS_URL") or DEFAULT_REDIS
    spec = LoopSpec()
    started = time.time()

    def show(kind: str, data: dict[str, Any]) -> None:
        line = _line(kind, data, started)
        if line and not as_json:
            console.print(line)

    if not as_json:
        console.print(f"[bold]capplan demo --live[/]: real rq workers under supervisord on "
                      f"{redis_url}; SLO p95 wait ≤ {spec.slo_wait_p95_s:g} s; "
                      f"{datetime.now(UTC):%H:%M:%S} UTC")
    with tempfile.TemporaryDirectory(prefix="capplan-live-") as tmp:
        try:
            report = ClosedLoop(spec, Path(tmp), redis_url, show).run()
        except (HarnessError, OSError) as err:
            fail(f"the live demo could not start supervisord or reach Redis at {redis_url}: "
                 f"{err}", code=1)
    before = report.workers_at(report.step_at - 1.0)
    out = {"workers_at_start": report.workers[0][1] if report.workers else None,
           "workers_before_step": before, "workers_at_end": report.workers[-1][1]
           if report.workers else None, "wait_p95_after_step_s": report.wait_p95_s,
           "slo_wait_p95_s": spec.slo_wait_p95_s, "cycles": len(report.cycles),
           "jobs_enqueued": report.enqueued}
    if as_json:
        print_json(out)
        return
    verdict = "[green]within[/]" if report.wait_p95_s <= spec.slo_wait_p95_s else "[red]above[/]"
    console.print(f"\nworkers {out['workers_at_start']} → {before} before the step → "
                  f"{out['workers_at_end']} at the end; p95 wait after the step "
                  f"{report.wait_p95_s:.2f} s, {verdict} the SLO; {out['cycles']} planning "
                  f"cycles. Plans: `capplan plans list`.")
