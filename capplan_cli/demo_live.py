"""``capplan demo --live``: the closed loop on real ``rq worker`` processes, as it happens.

supervisord (started here, in a temporary directory) runs 8 workers, 2 of them up; a load
generator enqueues 2 jobs/s and steps to 8 jobs/s at the first minute boundary at least a
minute away; four earlier days with that step are written into the demo's own store
(``<data dir>/demo/live.db``, emptied at the start of each run); metrics are collected every
5 s, ``capacity-plan`` runs in ``auto`` mode every 15 s from the store, and each approved step
is applied at its time through the supervisor scaler. Everything stops on its own after ~2-3
minutes; SIGTERM or Ctrl-C ends it early and cleanly (the current planning cycle finishes, then
the load, the workers and supervisord stop); a second signal stops at once, still stopping
supervisord.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from capplan_cli.output import console, fail, print_json

DEFAULT_REDIS = "redis://127.0.0.1:6379/9"


def _line(kind: str, data: dict[str, Any], started: float) -> str | None:
    t = f"[dim]{time.time() - started:6.1f}s[/]"
    if kind == "start":
        return (
            f"{t} supervisord group [bold]{data['group']}[/] ({data['workers']} workers up), "
            f"queue {data['queue']}; {data['backfilled']} rows of {data['days']} earlier "
            f"days in the store; the load steps 2 → 8 jobs/s at {data['step_at']}"
        )
    if kind == "workers":
        return f"{t} [bold cyan]workers RUNNING: {data['running']}[/]"
    if kind == "measured":
        wait = data.get("wait_p95_s")
        rate = data.get("arrival_rate")
        return (
            f"{t} measured: arrivals {rate if rate is None else f'{rate:.2f}'} jobs/s, "
            f"backlog {data.get('backlog')}, workers {data.get('workers')}, p95 wait "
            f"{'—' if wait is None else f'{wait:.2f} s'}"
        )
    if kind == "plan":
        steps = (
            ", ".join(f"{at[11:19]} {a}→{b} ({st})" for at, a, b, st in data["steps"])
            or "no change"
        )
        return (
            f"{t} [green]plan {data['id']}[/] {data['status']}: {data['from']} → "
            f"{data['to']} workers; steps: {steps}"
            + (f" [red]{data['reason']}[/]" if data.get("reason") else "")
        )
    if kind == "step":
        return (
            f"{t} [bold]plan {data['plan_id']} step {data['step_id']}: {data['outcome']}"
            f"[/] — {data['reason']}"
        )
    if kind == "collect-error":
        return f"{t} [red]collect: {data['error']}[/]"
    if kind == "stopping":
        return (
            f"{t} [yellow]{data['signal']}: stopping — the current planning cycle "
            "finishes, then the load, the workers and supervisord stop (send it again to "
            "stop at once)[/]"
        )
    if kind == "done":
        low = (
            f"; its second queue {data['low_priority_wait_p95_s']:.2f} s "
            f"({data['low_priority_jobs_measured']} jobs)"
            if "low_priority_wait_p95_s" in data
            else ""
        )
        return (
            f"{t} p95 wait of jobs after the step: {data['wait_p95_s']:.2f} s "
            f"({data['jobs_measured']} jobs){low}"
        )
    return None


@contextmanager
def stop_on_signals(stop: Callable[[str], None]) -> Iterator[None]:
    """SIGTERM and SIGINT call ``stop(name)`` once; a second one raises KeyboardInterrupt
    (the caller's ``finally`` blocks still run). The previous handlers come back after."""
    seen: list[str] = []

    def handler(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if seen:
            raise KeyboardInterrupt(f"{name} again")
        seen.append(name)
        stop(name)

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def run_live_demo(*, as_json: bool, shared: bool = False) -> None:
    # what happens is printed below; Prefect's per-task INFO lines and its temporary server's
    # telemetry would drown it (set before Prefect is first imported; explicit values win)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    from capplan_app.demo_store import demo_settings

    # the demo's own store, empty each run: its policy and history never reach the user's,
    # and no earlier run's policy claims the same supervisord group (issue 21)
    with demo_settings("live", fresh=True) as store_url:
        _run(as_json, store_url, shared)


#: ``--shared``: a second queue at 1 job/s served after the first, p95 <= 10 s (the
#: closed-loop test's scenario)
SHARED_LOW_RATE_PER_S = 1.0


def _run(as_json: bool, store_url: str, shared: bool = False) -> None:
    from redis.exceptions import RedisError

    from capplan_app.live.harness import HarnessError, forget_redis_keys
    from capplan_app.live.loop import ClosedLoop, LoopSpec

    redis_url = os.environ.get("CAPPLAN_REDIS_URL") or DEFAULT_REDIS
    spec = (
        LoopSpec(low_priority_rate_per_s=SHARED_LOW_RATE_PER_S, numprocs=10)
        if shared
        else LoopSpec()
    )
    started = time.time()

    def show(kind: str, data: dict[str, Any]) -> None:
        line = _line(kind, data, started)
        if line and not as_json:
            console.print(line, highlight=False)

    if not as_json:
        console.print(
            f"[bold]capplan demo --live[/]: real rq workers under supervisord on "
            f"{redis_url}; SLO p95 wait ≤ {spec.slo_wait_p95_s:g} s"
            + (
                f" (its second queue: {spec.low_priority_rate_per_s:g} job/s, p95 ≤ "
                f"{spec.low_priority_slo_wait_p95_s:g} s)"
                if spec.shared
                else ""
            )
            + "; "
            f"{datetime.now(UTC):%H:%M:%S} UTC; the demo's own store: {store_url}",
            highlight=False,
        )
    with tempfile.TemporaryDirectory(prefix="capplan-live-") as tmp:
        loop = ClosedLoop(spec, Path(tmp), redis_url, show)

        def stop(name: str) -> None:
            show("stopping", {"signal": name})
            loop.stop(name)

        try:
            with stop_on_signals(stop):
                try:
                    report = loop.run()
                finally:  # the demo's queue is gone with it: so are its keys
                    with contextlib.suppress(RedisError):
                        forget_redis_keys(redis_url, loop.tid)
        except (HarnessError, OSError) as err:
            fail(
                f"the live demo could not start supervisord or reach Redis at {redis_url}: {err}",
                code=1,
            )
        except KeyboardInterrupt as err:  # a second signal: loop.run() stopped supervisord
            name = str(err).removesuffix(" again") or "SIGINT"
            console.print(
                f"\nstopped at once by {name}; supervisord and its workers are stopped",
                highlight=False,
            )
            signum = getattr(signal, name, signal.SIGINT)
            raise typer.Exit(128 + int(signum)) from None
    _summary(report, spec, as_json, store_url, time.time() - started)


def _summary(report: Any, spec: Any, as_json: bool, store_url: str, took_s: float) -> None:
    before = report.workers_at(report.step_at - 1.0)
    first_up = next((t for t, w in report.workers if w > spec.start_workers), None)
    out = {
        "workers_at_start": report.workers[0][1] if report.workers else None,
        "workers_before_step": before,
        "workers_at_end": report.workers[-1][1] if report.workers else None,
        "scaled_up_s_before_step": None
        if first_up is None
        else round(report.step_at - first_up, 1),
        "wait_p95_after_step_s": report.wait_p95_s,
        "slo_wait_p95_s": spec.slo_wait_p95_s,
        **(
            {
                "low_priority_wait_p95_s": report.low_priority_wait_p95_s,
                "low_priority_slo_wait_p95_s": spec.low_priority_slo_wait_p95_s,
            }
            if spec.shared
            else {}
        ),
        "cycles": len(report.cycles),
        "jobs_enqueued": report.enqueued,
        "stopped": report.stopped,
        "took_s": round(took_s, 1),
        "store": store_url,
    }
    if as_json:
        print_json(out)
    elif report.stopped:
        console.print(
            f"\nstopped by {report.stopped} after {took_s:.0f} s; supervisord and "
            f"its workers are stopped. Plans: CAPPLAN_DATABASE_URL={store_url} "
            "capplan plans list",
            highlight=False,
        )
    else:
        ok = report.wait_p95_s <= spec.slo_wait_p95_s and (
            not spec.shared or report.low_priority_wait_p95_s <= spec.low_priority_slo_wait_p95_s
        )
        verdict = "[green]within[/]" if ok else "[red]above[/]"
        ahead = (
            ""
            if out["scaled_up_s_before_step"] is None
            else f" ({out['scaled_up_s_before_step']:g} s before the step)"
        )
        console.print(
            f"\nworkers {out['workers_at_start']} → {before} before the step{ahead} "
            f"→ {out['workers_at_end']} at the end; p95 wait after the step "
            f"{report.wait_p95_s:.2f} s"
            + (f" (second queue {report.low_priority_wait_p95_s:.2f} s)" if spec.shared else "")
            + f", {verdict} the SLO; {out['cycles']} planning "
            f"cycles in {took_s:.0f} s. Plans: CAPPLAN_DATABASE_URL={store_url} "
            "capplan plans list",
            highlight=False,
        )
    if report.stopped:
        signum = getattr(signal, report.stopped, None)
        raise typer.Exit(128 + int(signum) if signum is not None else 1)
