"""``capplan exporter``: the planner's own Prometheus metrics, read from the store at scrape time.

A custom collector on a private ``CollectorRegistry`` queries the store on every scrape, so the
numbers are the store's state, exposed as gauges (and one histogram of approval waits). The
arithmetic lives in :mod:`capplan_core.ops_metrics`; the metrics are listed in
docs/operations.md.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import typer
from prometheus_client.core import CollectorRegistry, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from capplan_core import ops_metrics as ops
from capplan_core.planning.stored_plan import PlanStatus, StepStatus

#: audit actions of the execution stage that operators count (``capplan_audit_events``)
EXECUTION_ACTIONS = ("scale", "scale_failed", "guard_refused", "guard_deferred", "drift")
#: approval-wait histogram bounds, seconds
APPROVAL_WAIT_BUCKETS_S = (60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0)
CYCLE_OUTCOMES = ("planned", "skipped", "failed", "missing")


class OpsCollector(Collector):
    """Builds every ``capplan_*`` metric from one pass over the store.

    Every query is bounded (the newest ``plans_limit`` plans, decided or not), and a pass is
    kept for ``cache_s`` seconds (about one scrape interval): scrapes that come closer
    together (two Prometheus replicas, a person's curl) share it instead of each querying
    the store, and a slow store is asked once at a time (a lock)."""

    def __init__(
        self,
        store: Any,
        *,
        max_gap_s: float = 900.0,
        plans_limit: int = 5000,
        cache_s: float = 10.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.max_gap_s, self.plans_limit, self.clock = (
            store,
            max_gap_s,
            plans_limit,
            clock,
        )
        self.cache_s, self.monotonic = cache_s, monotonic
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Any]] | None = None

    def collect(self) -> Iterator[Any]:
        with self._lock:
            now = self.monotonic()
            if self._cached is None or now - self._cached[0] >= self.cache_s:
                self._cached = (now, list(self._read()))
            families = self._cached[1]
        yield from families

    def _read(self) -> Iterator[Any]:
        started = time.perf_counter()
        up = GaugeMetricFamily(
            "capplan_exporter_store_up", "1 if the last scrape read the store, 0 if it failed"
        )
        try:
            families = list(self._families(self.clock()))
        except Exception as err:  # a scrape reports a broken store instead of failing
            up.add_metric([], 0.0)
            yield up
            yield _gauge(
                "capplan_exporter_scrape_duration_seconds",
                "time spent reading the store for this scrape",
                time.perf_counter() - started,
            )
            _log_error(err)
            return
        up.add_metric([], 1.0)
        yield from families
        yield up
        yield _gauge(
            "capplan_exporter_scrape_duration_seconds",
            "time spent reading the store for this scrape",
            time.perf_counter() - started,
        )

    def _families(self, now: datetime) -> Iterator[Any]:
        facts = self.store.recent_plan_facts(self.plans_limit)
        found = ops.cycles(facts, max_gap_s=self.max_gap_s)
        yield from _cycle_families(found, self.store.enabled_policy_queues())
        yield _by_label(
            "capplan_plans",
            "stored plans by status",
            "status",
            self.store.plan_status_counts(),
            [s.value for s in PlanStatus],
        )
        yield _by_label(
            "capplan_steps",
            "stored scaling steps by status",
            "status",
            self.store.step_status_counts(),
            [s.value for s in StepStatus],
        )
        yield _by_label(
            "capplan_audit_events",
            "stored audit events of the execution stage",
            "action",
            self.store.audit_action_counts(EXECUTION_ACTIONS),
            EXECUTION_ACTIONS,
        )
        yield _approval_histogram(
            ops.approval_waits(self.store.decided_plan_facts(self.plans_limit))
        )
        yield _gauge(
            "capplan_plan_awaiting_approval_oldest_age_seconds",
            "age of the oldest plan waiting for a person (proposed, with an approval "
            "deadline; 0 when none)",
            ops.oldest_awaiting_age_s(self.store.oldest_awaiting_created_at(), now),
        )
        yield from self._forecast_families(now)

    def _forecast_families(self, now: datetime) -> Iterator[Any]:
        mae = GaugeMetricFamily(
            "capplan_forecast_mae_jobs_per_second",
            "newest plan's forecast vs observed arrivals: mean absolute "
            "error over the windows that have passed",
            labels=["queue"],
        )
        mape = GaugeMetricFamily(
            "capplan_forecast_mape_ratio",
            "newest plan's forecast vs observed arrivals: mean absolute "
            "percentage error as a ratio",
            labels=["queue"],
        )
        windows = GaugeMetricFamily(
            "capplan_forecast_windows_compared",
            "forecast windows that have passed and hold observations",
            labels=["queue"],
        )
        plan_id = GaugeMetricFamily(
            "capplan_forecast_plan_id",
            "id of the plan whose forecast is compared",
            labels=["queue"],
        )
        forecasts = {q: fc for q, fc in self.store.newest_forecasts().items() if fc[1]}
        # from the first window to now, or a day past the last window, whichever is earlier
        observed = self.store.arrival_rates(
            {
                q: (pts[0][0], min(pts[-1][0] + timedelta(days=1), now))
                for q, (_, pts) in forecasts.items()
            }
        )
        for queue, (pid, points) in sorted(forecasts.items()):
            err = ops.forecast_error(points, observed[queue], now)
            plan_id.add_metric([queue], float(pid))
            windows.add_metric([queue], float(err.windows))
            if not math.isnan(err.mae_per_s):
                mae.add_metric([queue], err.mae_per_s)
            if not math.isnan(err.mape_ratio):
                mape.add_metric([queue], err.mape_ratio)
        yield from (mae, mape, windows, plan_id)


def _cycle_families(found: list[ops.CycleSummary], enabled: set[str]) -> Iterator[Any]:
    newest = found[0] if found else None
    counts = {
        "planned": 0,
        "skipped": 0,
        "failed": 0,
        "missing": len(ops.missing_queues(newest, enabled)),
    }
    if newest is not None:
        counts.update(planned=newest.planned, skipped=newest.skipped, failed=newest.failed)
        yield _gauge(
            "capplan_cycle_duration_seconds",
            "newest cycle: first plan stored to last plan stored",
            newest.duration_s,
        )
        yield _gauge(
            "capplan_cycle_last_timestamp_seconds",
            "newest cycle: when its last plan was stored (unix time)",
            newest.finished_at.timestamp(),
        )
    yield _by_label(
        "capplan_cycle_queues", "newest cycle: queues by outcome", "outcome", counts, CYCLE_OUTCOMES
    )
    ok = ops.last_successful(found)
    if ok is not None:
        yield _gauge(
            "capplan_cycle_last_success_timestamp_seconds",
            "newest cycle with a stored plan and no failed plan: when it ended (unix time)",
            ok.finished_at.timestamp(),
        )


def _approval_histogram(waits: dict[str, list[float]]) -> HistogramMetricFamily:
    h = HistogramMetricFamily(
        "capplan_plan_approval_wait_seconds",
        "decided plans: decided_at - created_at, by decision",
        labels=["decision"],
    )
    for decision, values in sorted(waits.items()):
        counts = ops.bucket_counts(values, APPROVAL_WAIT_BUCKETS_S)
        les = [_le(b) for b in APPROVAL_WAIT_BUCKETS_S] + ["+Inf"]
        h.add_metric(
            [decision],
            [(le, float(n)) for le, n in zip(les, counts, strict=True)],
            sum_value=float(sum(values)),
        )
    return h


def _le(bound: float) -> str:
    return str(int(bound)) if bound.is_integer() else str(bound)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _by_label(
    name: str, doc: str, label: str, counts: dict[str, int], known: Any
) -> GaugeMetricFamily:
    g = GaugeMetricFamily(name, doc, labels=[label])
    for key in sorted(set(known) | set(counts)):
        g.add_metric([key], float(counts.get(key, 0)))
    return g


def _log_error(err: Exception) -> None:
    from capplan_cli.output import err_console

    err_console.print(f"[red]scrape failed:[/] {type(err).__name__}: {str(err).splitlines()[0]}")


def build_registry(
    store: Any, *, max_gap_s: float = 900.0, plans_limit: int = 5000, cache_s: float = 10.0
) -> CollectorRegistry:
    """A private registry holding only the capplan collector."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(OpsCollector(store, max_gap_s=max_gap_s, plans_limit=plans_limit, cache_s=cache_s))
    return reg


def exporter_cmd(
    port: int = typer.Option(9477, "--port", min=1, max=65535, help="TCP port for /metrics"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on"),
    cycle_gap_s: float = typer.Option(
        900.0,
        "--cycle-gap-s",
        min=1.0,
        help="plans stored further apart than this belong to different cycles (s)",
    ),
    plans_limit: int = typer.Option(
        5000,
        "--plans-limit",
        min=1,
        max=1_000_000,
        help="newest plans read to find cycles (and decided plans for the approval waits)",
    ),
    cache_s: float = typer.Option(
        10.0,
        "--cache-seconds",
        min=0.0,
        max=3600.0,
        help="a scrape within this many seconds of the last store read reuses it (s)",
    ),
) -> None:
    """Serve the planner's own metrics for Prometheus at http://HOST:PORT/metrics."""
    from prometheus_client import start_http_server
    from sqlalchemy.exc import SQLAlchemyError

    from capplan_app.bootstrap import plan_store
    from capplan_cli.output import err_console, fail

    try:
        store = plan_store()
    except SQLAlchemyError as err:
        fail(f"cannot open the store: {type(err).__name__}: {str(err).splitlines()[0]}", code=1)
    registry = build_registry(
        store, max_gap_s=cycle_gap_s, plans_limit=plans_limit, cache_s=cache_s
    )
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as err:
        fail(f"cannot listen on {host}:{port}: {err}", code=1)
    err_console.print(f"capplan exporter serving http://{host}:{port}/metrics")
    try:
        while thread.is_alive():
            thread.join(timeout=1.0)
    except KeyboardInterrupt:
        server.shutdown()


def register(app: typer.Typer) -> None:
    app.command("exporter")(exporter_cmd)
