"""Benchmark: read one queue's 4 weeks of history from ``queue_metrics`` on PostgreSQL.

    .venv/bin/python bench/bench_history_read.py [--queues 1000] [--days 35] [--interval-s 60]
        [--keep | --reuse [DB]]

Creates a fresh database (dropped afterwards; ``--keep`` loads into ``capplan_bench_history``
and keeps it for ``--reuse``), migrates it, and fills
``queue_metrics`` with ``queues × days × 86400 / interval_s`` rows generated in SQL
(``INSERT … SELECT … FROM generate_series``, one day per statement, ordered by time then queue
so one queue's rows are spread over the table as live collection spreads them). The secondary
indexes are dropped for the load and rebuilt after it (as a bulk import would do), then
``ANALYZE``.

Then, in the same run, it times ``PlanStore.metrics_history(queue, since, until)`` for one
queue's last ``--read-days`` (default 28) days:
  index     the normal plan (``EXPLAIN`` must show an index-only scan on ``ix_metrics_history``)
  seq scan  the same call with ``enable_indexscan``, ``enable_bitmapscan`` and
            ``enable_indexonlyscan`` off (a full scan)
and prints the median wall time (ms) of each, their ratio, the server-side execution time
from ``EXPLAIN (ANALYZE, BUFFERS)``, and a Markdown table for docs/benchmarks-store.md.

Admin URL: ``$CAPPLAN_TEST_PG`` or ``postgresql+psycopg://postgres@127.0.0.1:5432/test``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, text

from capplan_adapters.store.db import make_engine, migrate
from capplan_adapters.store.repo import PlanStore

ADMIN_URL = os.environ.get("CAPPLAN_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
END = datetime(2026, 11, 29, tzinfo=UTC)
KEPT_DB = "capplan_bench_history"

FILL_DAY = text("""
INSERT INTO queue_metrics
    (queue_name, arrival_rate, service_rate, backlog, workers, service_time_p95,
     service_time_scv, recorded_at, extra)
SELECT 'q' || lpad(q::text, 4, '0'),
       5 + 4 * sin(2 * pi() * extract(epoch FROM ts) / 86400 + q),
       0.5, (q % 7)::float, 10 + (q % 5), 4.0 + (q % 3), 1.0, ts,
       jsonb_build_object('service_time_p95', 4.0 + (q % 3), 'service_time_scv', 1.0,
                          'source', 'bench')
FROM generate_series(CAST(:start AS timestamptz),
                     CAST(:stop AS timestamptz) - make_interval(secs => :step),
                     make_interval(secs => :step)) AS ts
CROSS JOIN generate_series(0, :queues - 1) AS q
ORDER BY ts, q
""")


def create_database(name: str | None = None) -> tuple[str, str]:
    name = name or f"capplan_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return name, ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_database(name: str) -> None:
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def secondary_indexes(url: str) -> list[tuple[str, str]]:
    """(name, definition) of queue_metrics' indexes other than the primary key."""
    eng = create_engine(url)
    with eng.connect() as c:
        rows = c.execute(
            text(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'queue_metrics' "
                "AND indexname <> 'queue_metrics_pkey'"
            )
        ).all()
    eng.dispose()
    return [(r[0], r[1]) for r in rows]


def fill(url: str, queues: int, days: int, step_s: int) -> dict[str, float]:
    """Load the table; returns timings (s) and sizes."""
    indexes = secondary_indexes(url)
    eng = create_engine(url, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text("ALTER TABLE queue_metrics DROP CONSTRAINT IF EXISTS uq_metrics_queue_time"))
        for name, _ in indexes:
            c.execute(text(f"DROP INDEX IF EXISTS {name}"))
        t0 = time.perf_counter()
        start = END - timedelta(days=days)
        for d in range(days):
            day = start + timedelta(days=d)
            c.execute(
                FILL_DAY,
                {"start": day, "stop": day + timedelta(days=1), "step": step_s, "queues": queues},
            )
            print(f"  day {d + 1}/{days} loaded, {time.perf_counter() - t0:.0f} s", flush=True)
        load_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        c.execute(
            text(
                "ALTER TABLE queue_metrics ADD CONSTRAINT uq_metrics_queue_time "
                "UNIQUE (queue_name, recorded_at)"
            )
        )
        for name, definition in indexes:
            if name != "uq_metrics_queue_time":
                c.execute(text(definition))
        index_s = time.perf_counter() - t1
        c.execute(text("VACUUM ANALYZE queue_metrics"))  # visibility map: index-only scans
        rows = c.execute(text("SELECT count(*) FROM queue_metrics")).scalar_one()
        size = c.execute(
            text(
                "SELECT pg_total_relation_size('queue_metrics'), pg_relation_size('queue_metrics')"
            )
        ).one()
    eng.dispose()
    return {
        "load_s": load_s,
        "index_s": index_s,
        "rows": float(rows),
        "total_bytes": float(size[0]),
        "table_bytes": float(size[1]),
    }


def sizes(url: str) -> dict[str, float]:
    eng = create_engine(url)
    with eng.connect() as c:
        rows = c.execute(text("SELECT count(*) FROM queue_metrics")).scalar_one()
        size = c.execute(
            text(
                "SELECT pg_total_relation_size('queue_metrics'), pg_relation_size('queue_metrics')"
            )
        ).one()
    eng.dispose()
    return {
        "load_s": float("nan"),
        "index_s": float("nan"),
        "rows": float(rows),
        "total_bytes": float(size[0]),
        "table_bytes": float(size[1]),
    }


def time_calls(store: PlanStore, queue: str, since: datetime, repeat: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    store.metrics_history(queue, since, END)  # warm-up (caches, hint bits)
    print(f"  first call (cold): {(time.perf_counter() - t0) * 1000:.1f} ms", flush=True)
    times, n = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        n = len(store.metrics_history(queue, since, END))
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), n


EXPLAIN_SQL = (
    "EXPLAIN (ANALYZE, BUFFERS) SELECT recorded_at, arrival_rate, service_rate, "
    "backlog, workers, service_time_p95, service_time_scv FROM queue_metrics "
    "WHERE queue_name = :q AND recorded_at >= :since AND recorded_at <= :until "
    "ORDER BY recorded_at"
)


def explain(url: str, queue: str, since: datetime, *, seq: bool) -> list[str]:
    eng = create_engine(url)
    with eng.connect() as c:
        if seq:
            c.execute(text("SET enable_indexscan = off"))
            c.execute(text("SET enable_bitmapscan = off"))
            c.execute(text("SET enable_indexonlyscan = off"))
        lines = [
            r[0] for r in c.execute(text(EXPLAIN_SQL), {"q": queue, "since": since, "until": END})
        ]
    eng.dispose()
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--queues", type=int, default=1000)
    ap.add_argument("--days", type=int, default=35)
    ap.add_argument("--interval-s", type=int, default=60)
    ap.add_argument("--read-days", type=int, default=28)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--seq-repeat", type=int, default=3)
    ap.add_argument(
        "--keep",
        action="store_true",
        help=f"load into (and keep) the database {KEPT_DB}, replacing it",
    )
    ap.add_argument(
        "--reuse",
        nargs="?",
        const=KEPT_DB,
        metavar="DB",
        help=f"time an existing database again (default {KEPT_DB}; same "
        "--queues/--days/--interval-s), without loading; migrated to head first",
    )
    args = ap.parse_args()

    if args.reuse:
        name, url = args.reuse, ADMIN_URL.rsplit("/", 1)[0] + f"/{args.reuse}"
        args.keep = True
    else:
        name, url = create_database(KEPT_DB if args.keep else None)
    print(f"database {name}")
    try:
        if args.reuse:
            migrate(url)
            stats = sizes(url)
        else:
            migrate(url)
            stats = fill(url, args.queues, args.days, args.interval_s)
        print(
            f"loaded {stats['rows']:,.0f} rows in {stats['load_s']:.0f} s, indexes "
            f"{stats['index_s']:.0f} s; table {stats['table_bytes'] / 2**30:.2f} GiB, "
            f"with indexes {stats['total_bytes'] / 2**30:.2f} GiB"
        )
        queue = f"q{args.queues // 2:04d}"
        since = END - timedelta(days=args.read_days)
        # the index timings first: a full scan before them would evict the index's pages
        index_plan = explain(url, queue, since, seq=False)
        index_ms, n = time_calls(PlanStore(make_engine(url)), queue, since, args.repeat)
        seq_plan = explain(url, queue, since, seq=True)
        off = create_engine(
            url,
            connect_args={
                "options": "-c enable_indexscan=off -c enable_bitmapscan=off "
                "-c enable_indexonlyscan=off"
            },
        )
        seq_ms, n_seq = time_calls(PlanStore(off), queue, since, args.seq_repeat)
        off.dispose()
        if n != n_seq:
            raise SystemExit(f"the two plans read different rows: {n} vs {n_seq}")
        print("\nEXPLAIN, index:\n  " + "\n  ".join(index_plan))
        print("\nEXPLAIN, sequential scan forced:\n  " + "\n  ".join(seq_plan))
        used = next((ln.strip() for ln in index_plan if "Index" in ln), "NO INDEX SCAN")
        sql_ms = [ln.split(":")[1].strip() for ln in index_plan if "Execution Time" in ln]
        seq_sql_ms = [ln.split(":")[1].strip() for ln in seq_plan if "Execution Time" in ln]
        print(f"\nplan node: {used}")
        print(
            f"\n| stored rows | queue rows read | metrics_history, index (median of "
            f"{args.repeat}) | same, seq scan (median of {args.seq_repeat}) | ratio | "
            f"SQL only, index | SQL only, seq scan |"
        )
        print("|---|---|---|---|---|---|---|")
        print(
            f"| {stats['rows']:,.0f} ({args.queues} queues × {args.days} d, "
            f"{args.interval_s} s) | {n:,} | {index_ms:.1f} ms | {seq_ms:.0f} ms | "
            f"{seq_ms / index_ms:.0f}× | {sql_ms[0] if sql_ms else '?'} | "
            f"{seq_sql_ms[0] if seq_sql_ms else '?'} |"
        )
    finally:
        if args.keep:
            print(f"kept database {name}: {url}")
        else:
            drop_database(name)


if __name__ == "__main__":
    main()
