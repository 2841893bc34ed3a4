"""Build metric sources from a policy's ``SourceSpec`` (lazily: nothing connects here)."""

from __future__ import annotations

from collections.abc import Sequence

from redis import Redis

from capplan_adapters.metrics.celery_source import CelerySource
from capplan_adapters.metrics.list_source import ListSource
from capplan_adapters.metrics.prometheus_source import PrometheusSource
from capplan_adapters.metrics.rq_source import RQSource
from capplan_adapters.metrics.stream_source import StreamSource
from capplan_core.metrics.snapshot import MetricsSource
from capplan_core.policy import SourceSpec

REDIS_KINDS = ("rq", "stream", "list", "celery")


def source_from_spec(
    spec: SourceSpec,
    queues: Sequence[str],
    *,
    redis_url: str | None = None,
    prometheus_url: str | None = None,
) -> MetricsSource:
    """The adapter for ``spec.kind`` over ``queues``.

    URLs in ``spec`` win over the URLs given here (settings, or the resolved
    ``redis_url_ref``/``prometheus_url_ref`` secrets, which win over the settings).

    Raises:
        ValueError: ``kind`` is ``file`` (read by the file source) or a needed URL is missing;
            the message names the field.
    """
    if spec.kind == "file":
        raise ValueError("source.kind 'file' is read by read_metrics_file, not polled")
    if spec.kind == "prometheus":
        url = spec.prometheus_url or prometheus_url
        if not url:
            raise ValueError(
                "source.prometheus_url or source.prometheus_url_ref is required "
                "for kind 'prometheus'"
            )
        return PrometheusSource(url, queues, promql=spec.promql)
    url = spec.redis_url or redis_url
    if not url:
        raise ValueError(
            f"source.redis_url, source.redis_url_ref (or CAPPLAN_REDIS_URL) is "
            f"required for kind {spec.kind!r}"
        )
    redis = Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
    if spec.kind == "rq":
        return RQSource(redis, queues)
    if spec.kind == "stream":
        return StreamSource(redis, queues, group=spec.stream_group)
    if spec.kind == "list":
        return ListSource(redis, queues)
    return CelerySource(redis, queues)
