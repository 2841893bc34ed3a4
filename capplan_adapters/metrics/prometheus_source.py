"""Prometheus: range queries over the HTTP API (``/api/v1/query_range``), PromQL per policy.

Each metric is one PromQL expression with ``{queue}`` standing for the queue name (override
any of them in ``SourceSpec.promql``; the defaults follow the metric names in
docs/metrics-sources.md). A poll evaluates every expression over ``(now − window_s, now]`` at
``step_s`` and keeps, for rates and service-time summaries, the mean over the window, and for
gauges (backlog, workers) the last value. Several series are summed (rates, gauges) or
max-ed (quantiles); an empty result means "not observed" (None), not zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from capplan_core.metrics.snapshot import QueueSnapshot, ensure_utc, failed_snapshot

DEFAULT_PROMQL: dict[str, str] = {
    "arrival_rate": 'sum(rate(capplan_jobs_enqueued_total{queue="{queue}"}[1m]))',
    "completion_rate": 'sum(rate(capplan_jobs_completed_total{queue="{queue}"}[1m]))',
    "service_time_mean": (
        'sum(rate(capplan_job_duration_seconds_sum{queue="{queue}"}[1m]))'
        ' / sum(rate(capplan_job_duration_seconds_count{queue="{queue}"}[1m]))'
    ),
    "service_time_p95": (
        "histogram_quantile(0.95, sum by (le) "
        '(rate(capplan_job_duration_seconds_bucket{queue="{queue}"}[1m])))'
    ),
    "wait_p95": (
        "histogram_quantile(0.95, sum by (le) "
        '(rate(capplan_job_wait_seconds_bucket{queue="{queue}"}[1m])))'
    ),
    "backlog": 'sum(capplan_queue_backlog{queue="{queue}"})',
    "workers": 'sum(capplan_workers{queue="{queue}"})',
}
_GAUGES = {"backlog", "workers"}
_QUANTILES = {"service_time_p95", "wait_p95"}


class PrometheusError(RuntimeError):
    """Prometheus answered with an error or an unusable payload."""


def promql_for(queue: str, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The PromQL expressions for ``queue`` (defaults updated by ``overrides``).

    Raises:
        ValueError: an override names an unknown metric (message lists the allowed keys).
    """
    unknown = set(overrides or {}) - set(DEFAULT_PROMQL)
    if unknown:
        raise ValueError(
            f"promql: unknown metric(s) {sorted(unknown)}; allowed: {sorted(DEFAULT_PROMQL)}"
        )
    exprs = {**DEFAULT_PROMQL, **(overrides or {})}
    return {k: v.replace("{queue}", queue) for k, v in exprs.items() if v}


def reduce_matrix(data: Mapping[str, Any], metric: str) -> float | None:
    """One number from a ``query_range`` ``data`` block (see module docstring); None if empty."""
    if data.get("resultType") != "matrix":
        raise PrometheusError(f"{metric}: expected a matrix, got {data.get('resultType')!r}")
    per_series = []
    for series in data.get("result", []):
        vals = [float(v) for _, v in series.get("values", [])]
        vals = [v for v in vals if math.isfinite(v)]
        if vals:
            per_series.append(vals[-1] if metric in _GAUGES else sum(vals) / len(vals))
    if not per_series:
        return None
    return max(per_series) if metric in _QUANTILES else sum(per_series)


class PrometheusSource:
    """Metrics of queues from a Prometheus server.

    Args:
        base_url: e.g. ``http://prometheus:9090``.
        queues: queue names substituted for ``{queue}``.
        promql: overrides of :data:`DEFAULT_PROMQL` (an empty string drops a metric).
        window_s / step_s: range of each query and its resolution (s).
        client: an ``httpx.Client`` to reuse (tests, connection pooling).
    """

    name = "prometheus"

    def __init__(
        self,
        base_url: str,
        queues: Sequence[str],
        *,
        promql: Mapping[str, str] | None = None,
        window_s: float = 60.0,
        step_s: float = 15.0,
        timeout_s: float = 10.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.queues = list(queues)
        self.promql = dict(promql or {})
        promql_for("x", self.promql)  # validate keys now, not at the first poll
        self.window_s = window_s
        self.step_s = step_s
        self.client = client or httpx.Client(timeout=timeout_s)

    def query_range(self, expr: str, metric: str, now: datetime) -> float | None:
        """Evaluate one expression over the window ending at ``now``."""
        end = now.timestamp()
        resp = self.client.get(
            f"{self.base_url}/api/v1/query_range",
            params={
                "query": expr,
                "start": f"{end - self.window_s:.3f}",
                "end": f"{end:.3f}",
                "step": f"{self.step_s:g}",
            },
        )
        try:
            body = resp.json()
        except ValueError:
            raise PrometheusError(f"{metric}: HTTP {resp.status_code}, not JSON") from None
        if body.get("status") != "success":
            raise PrometheusError(f"{metric}: {body.get('errorType')}: {body.get('error')}")
        return reduce_matrix(body["data"], metric)

    def poll(self, now: datetime) -> list[QueueSnapshot]:
        """One snapshot per queue; a failing query fails that queue only."""
        now = ensure_utc(now)
        out = []
        for q in self.queues:
            try:
                v = {m: self.query_range(e, m, now) for m, e in promql_for(q, self.promql).items()}
            except (httpx.HTTPError, PrometheusError) as err:
                out.append(failed_snapshot(q, now, self.name, f"{type(err).__name__}: {err}"))
                continue
            out.append(
                QueueSnapshot(
                    queue=q,
                    recorded_at=now,
                    source=self.name,
                    exists=any(x is not None for x in v.values()),
                    backlog=v.get("backlog"),
                    workers=v.get("workers"),
                    arrival_rate_per_s=v.get("arrival_rate"),
                    completion_rate_per_s=v.get("completion_rate"),
                    service_time_mean_s=v.get("service_time_mean"),
                    service_time_p95_s=v.get("service_time_p95"),
                    wait_p95_s=v.get("wait_p95"),
                )
            )
        return out
