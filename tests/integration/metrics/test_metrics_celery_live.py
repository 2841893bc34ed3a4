"""CelerySource against live Celery 5 workers (prefork) on the real Redis broker (db 7).

Ground truth: the test counts what it enqueued; the task counts ``<tag>:started`` and
``<tag>:completed`` in Redis. Two worker nodes (``-c 2`` and ``-c 1``, prefetch multiplier 1,
default early ack) consume one unique queue; tasks sleep ``SLEEP_S``.

* no worker yet: backlog == enqueued, exactly, over three priority lists;
* saturated: enqueued - started - (prefetched + start lag) <= backlog <= enqueued - started,
  i.e. the list misses at most ``CONCURRENCY`` (prefetch) + 1 tasks;
* workers (heartbeats, 2.5 s listen, hostname glob): exactly 2; a heartbeat on another
  database's channel is not counted;
* after a warm shutdown (prefetched tasks go back to the list): backlog == enqueued -
  completed, exactly, and 0 workers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis as redis_lib
from celery_app import TASK, make_app
from conftest import HERE

from capplan_adapters.metrics.celery_source import PRIORITY_SEP, CelerySource, heartbeat_hostname
from tests.service_helpers import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SLEEP_S = 1.0
CONCURRENCY = (2, 1)  # per worker node
RATE_PER_S = 5.0  # > sum(CONCURRENCY) / SLEEP_S = 3 tasks/s: the backlog grows
PREFETCH_SLACK = sum(CONCURRENCY) + 1  # prefetch multiplier 1, + one task between take and INCR


class Worker:
    def __init__(self, proc: subprocess.Popen, log: Path) -> None:
        self.proc, self.log = proc, log

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            pytest.fail(f"celery worker exited {self.proc.returncode}:\n{self.log.read_text()}")
        return " ready." in self.log.read_text()


@pytest.fixture
def workers(celery_cleanup: None) -> Iterator[list[Worker]]:
    """Worker processes, each in its own process group: SIGTERM to the main process (warm
    shutdown), then SIGKILL to whatever is left of its group (pool children). Stopped before
    ``celery_cleanup`` and the ``redis`` fixture remove the keys."""
    started: list[Worker] = []
    yield started
    for w in started:
        if w.proc.poll() is None:
            w.proc.terminate()
    for w in started:
        try:
            w.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            w.proc.kill()
            w.proc.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(w.proc.pid, signal.SIGKILL)


@pytest.fixture
def celery_cleanup(redis: redis_lib.Redis, tid: str) -> Iterator[None]:
    """Kombu's shared keys: our members of binding sets, our unacked messages."""
    yield
    for key in redis.scan_iter(match="_kombu.binding.*"):
        ours = [m for m in redis.smembers(key) if tid.encode() in m]
        if ours:
            redis.srem(key, *ours)
    if not redis.exists("_kombu.binding.celery.pidbox"):
        redis.zrem("_kombu.binding_deadlines", "celery.pidbox")
    for tag, payload in redis.hscan_iter("unacked"):
        if tid.encode() in payload:
            redis.hdel("unacked", tag)
            redis.zrem("unacked_index", tag)


def start_worker(tmp_path: Path, redis_url: str, queue: str, name: str, c: int) -> Worker:
    log = tmp_path / f"{name.split('@')[0]}.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.getcwd()]),
        "CAPPLAN_CELERY_BROKER": redis_url,
        "CAPPLAN_CELERY_QUEUE": queue,
    }
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "celery_app",
                "worker",
                "-Q",
                queue,
                "-n",
                name,
                "-c",
                str(c),
                "-P",
                "prefork",
                "--without-gossip",
                "--without-mingle",
                "-l",
                "info",
            ],
            cwd=HERE,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Worker(proc, log)


def test_celery_source_against_live_workers(redis, redis_url, tid, tmp_path, workers) -> None:
    q = f"celery-{tid}"
    started_key, completed_key = f"{tid}:started", f"{tid}:completed"
    producer = make_app(redis_url, q)
    enqueued = 0

    def gt(key: str) -> int:
        return int(redis.get(key) or 0)

    def send(priority: int) -> None:
        nonlocal enqueued
        producer.send_task(TASK, args=(tid, SLEEP_S), queue=q, priority=priority)
        enqueued += 1

    src = CelerySource(redis, [q])
    try:
        # 1. no worker: everything is in the lists, over priorities 0 / 5 / 9
        for i in range(12):
            send((0, 5, 9)[i % 3])
        assert [
            redis.llen(q),
            redis.llen(f"{q}{PRIORITY_SEP}5"),
            redis.llen(f"{q}{PRIORITY_SEP}9"),
        ] == [4, 4, 4]
        assert src.poll(datetime.now(UTC))[0].backlog == 12
        # kombu's default steps alone (the adapter's old reading) miss priority 5
        assert (
            CelerySource(redis, [q], priority_steps=(3, 6, 9)).poll(datetime.now(UTC))[0].backlog
            == 8
        )

        # 2. two worker nodes, fed at RATE_PER_S > capacity: saturated
        names = [f"a-{tid}@%h", f"b-{tid}@%h"]
        workers.extend(
            start_worker(tmp_path, redis_url, q, n, c)
            for n, c in zip(names, CONCURRENCY, strict=True)
        )
        wait_until(lambda: all(w.ready() for w in workers), 20, "celery workers ready")

        stop = threading.Event()

        def feed() -> None:
            t0 = time.monotonic()
            k = 0
            while not stop.is_set() and k < 40:
                k += 1
                send(0)
                stop.wait(max(0.0, t0 + k / RATE_PER_S - time.monotonic()))

        feeder = threading.Thread(target=feed)
        feeder.start()
        wait_until(lambda: gt(started_key) >= sum(CONCURRENCY), 10, "all processes busy")
        gaps = []
        for _ in range(4):
            e0, s0 = enqueued, gt(started_key)
            backlog = src.poll(datetime.now(UTC))[0].backlog
            e1, s1 = enqueued, gt(started_key)
            assert backlog is not None
            assert e0 - s1 - PREFETCH_SLACK <= backlog <= e1 - s0, (e0, e1, s0, s1, backlog)
            gaps.append((e0 - s1) - backlog)
            time.sleep(0.7)
        print(f"saturated: tasks missing from the list (prefetched) per poll: {gaps}")

        # workers: heartbeats every 2 s. Meanwhile a node on another db of the same server beats
        # too: pub/sub is server-wide, a raw "*celeryev*" subscriber sees it, the source not.
        seen_raw: set[str] = set()
        listening = threading.Event()

        def raw_listener() -> None:
            ps = redis.pubsub(ignore_subscribe_messages=True)
            ps.psubscribe("*celeryev*")
            listening.set()
            deadline = time.monotonic() + 2.5
            while (left := deadline - time.monotonic()) > 0:
                msg = ps.get_message(timeout=left)
                if msg and (h := heartbeat_hostname(msg["data"])) and tid in h:
                    seen_raw.add(h)
            ps.close()

        def other_db_node() -> None:
            base, db = redis_url.rsplit("/", 1)
            other = make_app(f"{base}/{int(db) + 2}", q)  # not the other xdist worker's db
            with other.events.default_dispatcher(hostname=f"z-{tid}@elsewhere") as disp:
                for _ in range(5):
                    disp.send("worker-heartbeat", active=0, processed=0)
                    time.sleep(0.4)
            other.close()

        side = [threading.Thread(target=raw_listener), threading.Thread(target=other_db_node)]
        side[0].start()
        listening.wait(5)
        side[1].start()
        live = CelerySource(redis, [q], heartbeat_listen_s=2.5, worker_hostname=f"*-{tid}@*")
        snap = live.poll(datetime.now(UTC))[0]
        for t in side:
            t.join()
        print(f"workers: source {snap.workers}, raw subscriber on all dbs {sorted(seen_raw)}")
        assert f"z-{tid}@elsewhere" in seen_raw
        assert snap.workers == 2, snap
        assert "worker nodes" in snap.notes[-1]
        stop.set()
        feeder.join()

        # 3. warm shutdown: running tasks finish, prefetched ones go back to the list
        for w in workers:
            w.proc.terminate()  # the main process only, as docker stop / Kubernetes do
        for w in workers:
            assert w.proc.wait(timeout=15) == 0, w.log.read_text()
        assert gt(started_key) == gt(completed_key)
        snap = live.poll(datetime.now(UTC))[0]
        truth = enqueued - gt(completed_key)
        print(
            f"stopped: enqueued {enqueued}, completed {gt(completed_key)}, "
            f"backlog {snap.backlog}, workers {snap.workers}"
        )
        assert snap.backlog == truth and truth > 0
        assert snap.workers == 0
    finally:
        producer.close()
