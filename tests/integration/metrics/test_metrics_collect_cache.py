"""collect_once with the Redis snapshot cache; flushes; the ``capplan collect`` command."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import typer
from typer.testing import CliRunner

from capplan_adapters.metrics import instrument
from capplan_adapters.metrics.cache import RedisSnapshots, cache_snapshot, latest_snapshot
from capplan_adapters.metrics.list_source import ListSource
from capplan_cli.collect import register
from capplan_core.metrics.collect import collect_once

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)


def push(redis, queue: str, n: int) -> None:
    for _ in range(n):
        instrument.enqueue(redis, queue, "job")


def test_latest_snapshot_is_cached_with_a_ttl(redis, tid) -> None:
    queue = f"c-{tid}"
    push(redis, queue, 3)
    snap = ListSource(redis, [queue]).poll(T0)[0]
    prefix = f"capplan:snapshot:{tid}:"
    cache_snapshot(redis, snap, ttl_s=30, prefix=prefix)
    assert latest_snapshot(redis, queue, prefix=prefix) == snap
    assert 0 < redis.ttl(f"{prefix}{queue}") <= 30
    assert latest_snapshot(redis, f"other-{tid}", prefix=prefix) is None


def test_flush_between_cycles_gives_no_negative_rates_nor_duplicate_rows(redis, tid) -> None:
    queue = f"f-{tid}"
    instrument.declare_queue(redis, queue)
    src = ListSource(redis, [queue])
    prev = RedisSnapshots(redis, ttl_s=60, prefix=f"capplan:snapshot:{tid}:")
    written: list[dict] = []
    cycles = []
    for minute, before in enumerate([50, 60, "flush", 20, 30]):
        if before == "flush":
            for key in redis.scan_iter(match=f"*{queue}*"):
                redis.delete(key)
            push(redis, queue, 5)
        else:
            push(redis, queue, before)
        cycles.append(
            collect_once(
                [src], written.extend, T0 + timedelta(minutes=minute), previous=prev, interval_s=60
            )
        )
    rates = [c.rows[0]["arrival_rate"] for c in cycles]
    assert rates[0] is None  # first cycle: no previous snapshot
    assert rates[1] == pytest.approx(60 / 60)
    assert rates[2] is None  # counter reset by the flush: unknown, not negative
    assert rates[3] == pytest.approx(20 / 60) and rates[4] == pytest.approx(30 / 60)
    keys = [(r["queue_name"], r["recorded_at"]) for r in written]
    assert len(keys) == len(set(keys)) == 5
    assert all(r["recorded_at"].second == 0 for r in written)  # truncated to the interval
    # re-running a cycle in the same interval gives the same key (the store upserts)
    again = collect_once([src], None, T0 + timedelta(minutes=4, seconds=20), previous=prev)
    assert (again.rows[0]["queue_name"], again.rows[0]["recorded_at"]) == keys[-1]


def test_collect_once_isolates_a_failing_source(redis, tid) -> None:
    queue = f"ok-{tid}"
    push(redis, queue, 2)

    class Broken:
        name, queues = "broken", ["x", "y"]

        def poll(self, now):
            raise ConnectionError("redis down")

    res = collect_once([Broken(), ListSource(redis, [queue])], None, T0)
    assert [r["queue_name"] for r in res.rows] == [queue]
    assert {(e.source, e.queue) for e in res.errors} == {("broken", "x"), ("broken", "y")}


def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.command("noop")
    def _noop() -> None:  # a second command keeps typer's sub-command layout
        pass

    return app


def test_collect_command_prints_measurements(redis, redis_url, tid) -> None:
    queue = f"cli-{tid}"
    instrument.declare_queue(redis, queue)
    push(redis, queue, 4)
    res = CliRunner().invoke(
        cli(),
        [
            "collect",
            "--redis",
            redis_url,
            "--kind",
            "list",
            "--queue",
            queue,
            "--window",
            "0.3",
            "--every",
            "0.1",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    for key in (
        "arrival_rate",
        "completion_rate",
        "service_time_mean_s",
        "service_time_p95_s",
        "wait_p95_s",
        "backlog",
        "workers",
    ):
        assert key in out
    assert out["backlog"] == 4 and out["arrival_rate"] == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--kind", "kafka"], "--kind"),
        (["--window", "0"], "--window"),
        (["--window", "nan"], "--window"),
        (["--redis", "http://x"], "--redis"),
        (["--group", "g"], "--group"),
    ],
)
def test_collect_command_rejects_bad_flags(redis_url, args, needle) -> None:
    base = {"--redis": redis_url, "--kind": "list", "--queue": "q", "--window": "1"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    argv = ["collect"] + [x for kv in base.items() for x in kv]
    res = CliRunner().invoke(cli(), argv)
    assert res.exit_code == 2
    assert needle in res.output
