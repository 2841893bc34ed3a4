"""PrometheusSource against a real Prometheus scraping a test exporter with known counters.

The Prometheus binary comes from the distribution (``apt-get install prometheus``, which
``bin/services`` does when it is missing); without it these tests fail, saying why.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from capplan_adapters.metrics.prometheus_source import PrometheusSource, reduce_matrix
from capplan_core.metrics.rates import snapshots_to_metrics
from tests.service_helpers import free_port, prometheus_scraping, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RATE_PER_S = 10.0
SERVICE_S = 0.2
QUEUE = "emails"
FAST = {  # 1 s scrapes: rate over 5 s instead of the default 1 m
    "arrival_rate": 'sum(rate(capplan_jobs_enqueued_total{queue="{queue}"}[5s]))',
    "completion_rate": 'sum(rate(capplan_jobs_completed_total{queue="{queue}"}[5s]))',
    "service_time_mean": (
        'sum(rate(capplan_job_duration_seconds_sum{queue="{queue}"}[5s]))'
        ' / sum(rate(capplan_job_duration_seconds_count{queue="{queue}"}[5s]))'
    ),
    "service_time_p95": (
        "histogram_quantile(0.95, sum by (le) "
        '(rate(capplan_job_duration_seconds_bucket{queue="{queue}"}[5s])))'
    ),
    "wait_p95": "",
}


@pytest.fixture(scope="module")
def exporter() -> Iterator[int]:
    """A prometheus_client exporter whose counters grow at RATE_PER_S."""
    reg = CollectorRegistry()
    enq = Counter("capplan_jobs_enqueued", "jobs", ["queue"], registry=reg)
    done = Counter("capplan_jobs_completed", "jobs", ["queue"], registry=reg)
    dur = Histogram(
        "capplan_job_duration_seconds", "s", ["queue"], registry=reg, buckets=(0.1, 0.25, 0.5, 1.0)
    )
    Gauge("capplan_queue_backlog", "jobs", ["queue"], registry=reg).labels(QUEUE).set(7)
    Gauge("capplan_workers", "workers", ["queue"], registry=reg).labels(QUEUE).set(3)
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(1 / RATE_PER_S):
            enq.labels(QUEUE).inc()
            done.labels(QUEUE).inc()
            dur.labels(QUEUE).observe(SERVICE_S)

    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=reg)
    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    yield port
    stop.set()
    server.shutdown()


@pytest.fixture(scope="module")
def prometheus(exporter: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with prometheus_scraping(f"127.0.0.1:{exporter}", tmp_path_factory.mktemp("prom")) as url:
        yield url


def test_prometheus_source_reads_known_rates_quantiles_and_gauges(prometheus: str) -> None:
    src = PrometheusSource(prometheus, [QUEUE], promql=FAST, window_s=3, step_s=1)

    def have_rate() -> bool:
        return src.poll(datetime.now(UTC))[0].arrival_rate_per_s is not None

    wait_until(have_rate, 30, "6 s of scrapes")
    time.sleep(6)
    snap = src.poll(datetime.now(UTC))[0]
    assert snap.error is None
    assert snap.arrival_rate_per_s == pytest.approx(RATE_PER_S, rel=0.2)
    assert snap.completion_rate_per_s == pytest.approx(RATE_PER_S, rel=0.2)
    assert snap.service_time_mean_s == pytest.approx(SERVICE_S, rel=1e-6)
    assert 0.1 < snap.service_time_p95_s <= 0.25  # inside the bucket that holds 0.2 s
    assert (snap.backlog, snap.workers) == (7, 3)
    row = snapshots_to_metrics(None, snap)
    assert row.service_rate == pytest.approx(1 / SERVICE_S)


def test_prometheus_bad_query_fails_that_queue_only(prometheus: str) -> None:
    src = PrometheusSource(prometheus, [QUEUE], promql={"arrival_rate": "sum(("})
    snap = src.poll(datetime.now(UTC))[0]
    assert snap.error is not None and "bad_data" in snap.error


def test_unknown_promql_key_is_rejected() -> None:
    with pytest.raises(ValueError, match="arrival_rates"):
        PrometheusSource("http://x", [QUEUE], promql={"arrival_rates": "1"})


def test_reduce_matrix_on_a_recorded_response() -> None:
    # recorded from Prometheus 2.42 /api/v1/query_range (two series, one NaN point)
    data = {
        "resultType": "matrix",
        "result": [
            {"metric": {"pod": "a"}, "values": [[1.0, "2"], [2.0, "4"], [3.0, "NaN"]]},
            {"metric": {"pod": "b"}, "values": [[1.0, "1"], [2.0, "1"]]},
        ],
    }
    assert reduce_matrix(data, "arrival_rate") == pytest.approx(3 + 1)
    assert reduce_matrix(data, "workers") == pytest.approx(4 + 1)
    assert reduce_matrix(data, "service_time_p95") == pytest.approx(3)
    assert reduce_matrix({"resultType": "matrix", "result": []}, "backlog") is None
