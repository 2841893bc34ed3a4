"""Collect 1,000 queues from one Redis: pipelined vs one-command-per-round-trip.

    .venv/bin/python bench/bench_collect.py [--redis redis://127.0.0.1:6379/7] [--queues 1000]

Builds ``--queues`` instrumented list queues (backlog, counters, 1,000 timing samples, 2 worker
heartbeats each) and as many RQ queues (backlog, 20 finished jobs, 1 worker each) under a
random tag. Between timed cycles (untimed) every list queue completes ``--jobs`` more jobs, so
a steady cycle reads the counters plus that many new samples per queue. Times the first (cold)
cycle and ``--cycles`` steady cycles of each source, pipelined and one command per round trip
(the baseline, same run, same data), prints the ratio, then deletes everything it created.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from datetime import UTC, datetime

from redis import Redis

from capplan_adapters.metrics import instrument
from capplan_adapters.metrics.cache import RedisSnapshots
from capplan_adapters.metrics.list_source import ListSource
from capplan_adapters.metrics.rq_source import RQSource
from capplan_core.metrics.collect import collect_once


def setup(r: Redis, tag: str, n: int) -> tuple[list[str], list[str]]:
    lists = [f"bench-{tag}-l{i}" for i in range(n)]
    rqs = [f"bench-{tag}-r{i}" for i in range(n)]
    now = time.time()
    p = r.pipeline(transaction=False)
    for q in lists:
        p.lpush(q, *range(10))
        p.set(instrument.key(q, "enqueued"), 1000)
        p.set(instrument.key(q, "completed"), 990)
        p.set(instrument.key(q, "inflight"), 2)
        p.lpush(
            instrument.key(q, "samples"), *[f"{now - j:.6f},0.2{j % 10},0.01" for j in range(1000)]
        )
        p.zadd(instrument.key(q, "workers"), {f"w1-{tag}": now, f"w2-{tag}": now})
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    for q in rqs:
        p.sadd("rq:queues", f"rq:queue:{q}")
        p.rpush(f"rq:queue:{q}", *[f"{q}-w{j}" for j in range(5)])
        for j in range(20):
            jid = f"{q}-d{j}"
            p.zadd(f"rq:finished:{q}", {jid: now + 500})
            p.hset(
                f"rq:job:{jid}",
                mapping={"enqueued_at": stamp, "started_at": stamp, "ended_at": stamp},
            )
        p.sadd(f"rq:workers:{q}", f"rq:worker:{q}-w")
        p.hset(f"rq:worker:{q}-w", "last_heartbeat", stamp)
    p.execute()
    return lists, rqs


def cleanup(r: Redis, tag: str) -> None:
    for key in r.scan_iter(match=f"*{tag}*", count=5000):
        r.delete(key)
    members = [m for m in r.smembers("rq:queues") if tag.encode() in m]
    if members:
        r.srem("rq:queues", *members)


def traffic(r: Redis, queues: list[str], jobs: int) -> None:
    """Untimed: each queue completes ``jobs`` more jobs (as workers following instrument.py)."""
    now = time.time()
    p = r.pipeline(transaction=False)
    for q in queues:
        p.incrby(instrument.key(q, "enqueued"), jobs)
        p.incrby(instrument.key(q, "completed"), jobs)
        p.lpush(instrument.key(q, "samples"), *[f"{now:.6f},0.25,0.01"] * jobs)
        p.ltrim(instrument.key(q, "samples"), 0, instrument.SAMPLES_CAP - 1)
    p.execute()


def timed(fn, cycles: int, between=None) -> list[float]:
    out = []
    for _ in range(cycles):
        if between is not None:
            between()
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/7")
    ap.add_argument("--queues", type=int, default=1000)
    ap.add_argument("--cycles", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=10, help="completions per queue between cycles")
    args = ap.parse_args()
    r = Redis.from_url(args.redis)
    tag = f"b{uuid.uuid4().hex[:8]}"
    try:
        lists, rqs = setup(r, tag, args.queues)
        more = lambda: traffic(r, lists, args.jobs)  # noqa: E731
        lsrc = ListSource(r, lists)
        cold = timed(lambda: lsrc.poll(datetime.now(UTC)), 1)
        piped = timed(lambda: lsrc.poll(datetime.now(UTC)), args.cycles, more)
        usrc = ListSource(r, lists)
        cold_u = timed(lambda: usrc.poll(datetime.now(UTC), pipelined=False), 1)
        plain = timed(lambda: usrc.poll(datetime.now(UTC), pipelined=False), args.cycles, more)
        cache = RedisSnapshots(r, prefix=f"capplan:snapshot:{tag}:")
        # a Prefect flow run is a fresh process each minute: new source, previous from the cache
        cycle = lambda: collect_once(  # noqa: E731
            [ListSource(r, lists)],
            None,
            datetime.now(UTC),
            previous=cache,
        )
        timed(cycle, 1)
        stateless = timed(cycle, args.cycles, more)
        rsrc = RQSource(r, rqs)
        rq_first = timed(lambda: rsrc.poll(datetime.now(UTC)), 1)  # fetches every job hash
        rq_steady = timed(lambda: rsrc.poll(datetime.now(UTC)), args.cycles)
        med_p, med_u = statistics.median(piped), statistics.median(plain)
        print(f"queues per source: {args.queues}  (Redis {r.info('server')['redis_version']})")
        print(
            f"list source, first cycle:    {cold[0] * 1000:8.1f} ms pipelined, "
            f"{cold_u[0] * 1000:8.1f} ms un-pipelined (200 samples/queue)"
        )
        print(
            f"list source, pipelined:      median {med_p * 1000:8.1f} ms / cycle "
            f"({args.jobs} new samples/queue)"
        )
        print(f"list source, un-pipelined:   median {med_u * 1000:8.1f} ms / cycle")
        print(
            f"pipelined speed-up:          {med_u / med_p:8.1f} x (steady), "
            f"{cold_u[0] / cold[0]:.1f} x (first cycle)"
        )
        print(
            f"collect_once, fresh process: median {statistics.median(stateless) * 1000:8.1f} ms"
            " / cycle (list source + Redis snapshot cache)"
        )
        print(
            f"rq source, first cycle:      {rq_first[0] * 1000:8.1f} ms "
            f"({args.queues * 20} job hashes)"
        )
        print(
            f"rq source, steady state:     median {statistics.median(rq_steady) * 1000:8.1f} ms"
            " / cycle"
        )
    finally:
        cleanup(r, tag)


if __name__ == "__main__":
    main()
