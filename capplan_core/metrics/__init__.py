"""Metrics: where queue measurements enter capplan.

* ``snapshot`` -- :class:`QueueSnapshot` and the :class:`MetricsSource` port;
* ``rates`` -- pure ``snapshots_to_metrics`` / ``window_metrics`` (counter resets, conservation);
* adapters: ``rq_source``, ``stream_source``, ``list_source`` (+ ``instrument``),
  ``prometheus_source``, ``celery_source``; ``sources.source_from_spec`` builds them;
* ``cache`` -- latest snapshot per queue in Redis; ``collect.collect_once`` -- one cycle;
* ``file_source`` / ``schema`` -- the metrics file format.

Adapters are imported from their modules (not here), so importing this package connects to
nothing and pulls in no client library.
"""

from capplan_core.metrics.rates import MetricsRow, snapshots_to_metrics, window_metrics
from capplan_core.metrics.snapshot import JobSample, MetricsSource, QueueSnapshot

__all__ = [
    "JobSample",
    "MetricsRow",
    "MetricsSource",
    "QueueSnapshot",
    "snapshots_to_metrics",
    "window_metrics",
]
