"""A real HTTP Kubernetes API double per test, with the demo's worker Deployments."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from k8s_double import K8sApiDouble


@pytest.fixture
def k8s() -> Iterator[K8sApiDouble]:
    double = K8sApiDouble()
    double.add_deployment("workers", "email-worker", replicas=2)
    double.add_deployment("batch", "report-worker", replicas=1)
    double.add_deployment("workers", "thumbnail-worker", replicas=3)
    double.add_scaledobject(
        "workers", "thumbnail-so", "thumbnail-worker", min_replicas=3, max_replicas=40
    )
    double.start()
    yield double
    double.stop()
