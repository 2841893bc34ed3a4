"""``capplan collect``: watch one live queue for a window and print what capplan measures.

Polls the queue every ``--every`` seconds for ``--window`` seconds, then reports rates over the
whole window (counter resets and flushes make intervals unknown, never negative), service
time and wait statistics where the source has them, and the last backlog and worker count.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

import typer

from capplan_cli.output import console, fail, print_json

KINDS = ("rq", "stream", "list")
FIELDS = (
    "arrival_rate",
    "completion_rate",
    "service_time_mean_s",
    "service_time_p95_s",
    "wait_p95_s",
    "backlog",
    "workers",
)


def _positive(flag: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        fail(f"{flag} must be a finite number > 0 (got {value!r})")


def _connect(url: str) -> Any:
    from redis import Redis
    from redis.exceptions import RedisError

    try:
        redis = Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
    except ValueError as err:
        fail(f"--redis {url!r} is not a Redis URL ({err})")
    try:
        redis.ping()
    except RedisError as err:
        fail(f"--redis {url!r}: cannot reach Redis ({err})", code=1)
    return redis


def watch(source: Any, queue: str, window_s: float, every_s: float) -> dict[str, Any]:
    """Poll ``source`` over ``window_s`` and summarise (see module docstring)."""
    from capplan_core.metrics.rates import window_metrics

    snaps = []
    deadline = time.monotonic() + window_s
    while True:
        snaps.extend(source.poll(datetime.now(UTC)))
        left = deadline - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(every_s, left))
    row = window_metrics([s for s in snaps if s.queue == queue])
    out: dict[str, Any] = {
        "queue": queue,
        "source": row.source,
        "window_s": row.interval_s,
        "error": snaps[-1].error,
        "exists": snaps[-1].exists,
    }
    out.update({f: getattr(row, f) for f in FIELDS})
    out.update(
        {
            "wait_p50_s": row.wait_p50_s,
            "wait_p99_s": row.wait_p99_s,
            "wait_mean_s": row.wait_mean_s,
            "service_time_scv": row.service_time_scv,
            "in_progress": row.in_progress,
            "samples": row.samples,
            "partial": row.partial,
            "notes": list(row.notes),
        }
    )
    return out


def register(app: typer.Typer) -> None:
    @app.command("collect")
    def collect(
        redis_url: str = typer.Option(..., "--redis", help="Redis URL, e.g. redis://host:6379/0"),
        kind: str = typer.Option(..., "--kind", help="queue kind: rq | stream | list"),
        queue: str = typer.Option(..., "--queue", help="queue name (stream key for streams)"),
        window: float = typer.Option(..., "--window", help="seconds to watch the queue"),
        every: float = typer.Option(1.0, "--every", help="seconds between polls"),
        group: str | None = typer.Option(
            None, "--group", help="stream consumer group (default: the stream's only group)"
        ),
        as_json: bool = typer.Option(False, "--json", help="print JSON"),
    ) -> None:
        """Watch one queue for --window seconds and print its measured rates and times."""
        if kind not in KINDS:
            fail(f"--kind must be one of {', '.join(KINDS)} (got {kind!r})")
        if not queue.strip():
            fail("--queue must not be empty")
        _positive("--window", window)
        _positive("--every", every)
        if group is not None and kind != "stream":
            fail(f"--group applies to --kind stream only (got --kind {kind!r})")
        redis = _connect(redis_url)
        from capplan_adapters.metrics.list_source import ListSource
        from capplan_adapters.metrics.rq_source import RQSource
        from capplan_adapters.metrics.stream_source import StreamSource

        source: Any
        if kind == "rq":
            source = RQSource(redis, [queue])
        elif kind == "stream":
            source = StreamSource(redis, [queue], group=group)
        else:
            source = ListSource(redis, [queue])
        out = watch(source, queue, window, every)
        if out["error"]:
            # a group that does not exist (or is ambiguous) is a bad --group value
            fail(out["error"], code=2 if "consumer group" in out["error"] else 1)
        if not out["exists"]:
            fail(f"--queue {queue!r}: no {kind} queue of that name at {redis_url}", code=1)
        if as_json:
            print_json(out)
            return
        console.print(f"[bold]{queue}[/] ({kind}) over {window:g} s")
        for f in FIELDS:
            v = out[f]
            console.print(f"  {f:<22} {'n/a' if v is None else f'{v:.4g}'}")
        for n in out["notes"]:
            console.print(f"  [dim]note: {n}[/]")
