"""collect-metrics against the real Redis and the real Prefect server: rows written once per
interval, a broken source reported without stopping the healthy one."""

from __future__ import annotations

import uuid

import pytest
import yaml
from redis import Redis

from capplan_adapters.metrics import instrument
from capplan_app.bootstrap import plan_store
from capplan_app.settings import get_settings
from tests.conftest import require_service
from tests.service_helpers import metrics_redis_url

pytestmark = [pytest.mark.integration]
REDIS = metrics_redis_url()  # database 7, or this xdist worker's own


@pytest.fixture
def queue_name():
    require_service("Redis", "127.0.0.1", 6379)
    name = f"cp-{uuid.uuid4().hex[:8]}"
    yield name
    r = Redis.from_url(REDIS)
    for k in r.scan_iter(f"*{name}*"):
        r.delete(k)


def test_collect_writes_each_interval_once_and_isolates_a_bad_source(
    prefect_server, capplan_env, tmp_path, monkeypatch, queue_name
):
    monkeypatch.setenv("CAPPLAN_REDIS_URL", REDIS)
    get_settings.cache_clear()
    policies = {
        "policies": [
            {
                "name": "good",
                "queue": queue_name,
                "target": {"name": "w"},
                "slo": {"wait_p95_seconds": 30},
                "source": {"kind": "list", "redis_url": REDIS},
            },
            {
                "name": "broken",
                "queue": "elsewhere",
                "target": {"name": "w2"},
                "slo": {"wait_p95_seconds": 30},
                "source": {"kind": "list", "redis_url": "redis://127.0.0.1:1/0"},
            },
        ]
    }
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(policies))
    r = Redis.from_url(REDIS)
    instrument.declare_queue(r, queue_name)
    for i in range(5):
        instrument.enqueue(r, queue_name, f"job-{i}")
    instrument.heartbeat(r, queue_name, "w1")

    from flows.collect_metrics import collect_metrics

    first = collect_metrics(policy_path=str(path), interval_s=3600)
    again = collect_metrics(policy_path=str(path), interval_s=3600)
    assert any("elsewhere" in e or "127.0.0.1:1" in e for e in first["errors"]), first
    assert first["rows_written"] == 1
    assert again["rows_written"] == 0  # same interval: nothing twice
    rows = plan_store().metrics(queue_name)
    assert len(rows) == 1
    assert rows[0].backlog == 5 and rows[0].workers == 1
