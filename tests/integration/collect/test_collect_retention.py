"""collect-metrics prunes queue_metrics past the retention horizon (CAPPLAN_METRICS_RETENTION_DAYS,
default 35 days), against the real Redis and Prefect server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from capplan_app.bootstrap import plan_store
from capplan_app.settings import get_settings
from tests.conftest import require_service
from tests.service_helpers import metrics_redis_url

pytestmark = [pytest.mark.integration]
REDIS = metrics_redis_url()  # database 7, or this xdist worker's own


def _row(queue: str, at: datetime) -> dict:
    return {
        "queue_name": queue,
        "recorded_at": at,
        "arrival_rate": 1.0,
        "service_rate": 1.0,
        "backlog": 0.0,
        "workers": 1.0,
        "extra": {},
    }


@pytest.mark.parametrize("days_env, kept_days", [(None, 35.0), ("10", 10.0)])
def test_collect_prunes_rows_older_than_the_retention_horizon(
    prefect_server, capplan_env, tmp_path, monkeypatch, days_env, kept_days
):
    require_service("Redis", "127.0.0.1", 6379)
    monkeypatch.setenv("CAPPLAN_REDIS_URL", REDIS)
    if days_env is None:
        monkeypatch.delenv("CAPPLAN_METRICS_RETENTION_DAYS", raising=False)
    else:
        monkeypatch.setenv("CAPPLAN_METRICS_RETENTION_DAYS", days_env)
    get_settings.cache_clear()
    queue = f"ret-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    ages_days = [60, 36, 34, 11, 9, 1]
    store = plan_store()
    assert store.record_metrics([_row(queue, now - timedelta(days=d)) for d in ages_days]) == 6
    path = tmp_path / "p.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "policies": [
                    {
                        "name": "r",
                        "queue": queue,
                        "target": {"name": "w"},
                        "slo": {"wait_p95_seconds": 30},
                        "source": {"kind": "list", "redis_url": REDIS},
                    }
                ]
            }
        )
    )

    from flows.collect_metrics import collect_metrics

    report = collect_metrics(policy_path=str(path), interval_s=3600)
    expected_gone = sum(d > kept_days for d in ages_days)
    assert report["pruned"] == expected_gone
    left = store.metrics_history(queue, since=None)
    ages_left = sorted(round((now - t).total_seconds() / 86400) for t in left["timestamp"])
    # the rows younger than the horizon stay (beside any row this cycle collected, age 0)
    assert [a for a in ages_left if a > 0] == sorted(d for d in ages_days if d <= kept_days)
