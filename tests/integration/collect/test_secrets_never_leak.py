"""A planted password never leaks: a Redis that needs one is reached through secret
references (an environment variable, and a Prefect Secret block), collect-metrics and a
planning cycle run on the real Prefect server, and then the whole plan store, every flow run's
parameters, every log line and every artifact are searched for the password: found 0 times."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator

import pytest
import yaml
from redis import Redis
from sqlalchemy import create_engine, text

from capplan_adapters.metrics import instrument
from capplan_app.bootstrap import plan_store
from capplan_app.settings import get_settings
from tests.service_helpers import free_port, metrics_redis_url, wait_until

pytestmark = [pytest.mark.integration]
PLANTED = f"planted-{uuid.uuid4().hex}"


@pytest.fixture
def locked_redis() -> Iterator[str]:
    """A private redis-server that refuses clients without the planted password."""
    port = free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--requirepass",
            PLANTED,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def up() -> bool:
        try:
            return bool(Redis(port=port, password=PLANTED).ping())
        except Exception:  # noqa: BLE001 - not up yet
            return False

    wait_until(up, 30, "private redis-server")
    yield f"redis://:{PLANTED}@127.0.0.1:{port}/0"
    proc.kill()
    proc.wait(timeout=30)


def test_a_planted_password_is_in_no_store_row_parameter_log_or_artifact(
    prefect_server, capplan_env, tmp_path, monkeypatch, locked_redis
):
    from prefect.client.orchestration import get_client

    from capplan_app.secrets import store_prefect_secret
    from flows.capacity_plan import capacity_plan
    from flows.collect_metrics import collect_metrics

    monkeypatch.setenv("CAPPLAN_REDIS_URL", metrics_redis_url())  # the snapshot cache
    monkeypatch.setenv("CAPPLAN_TEST_LOCKED_REDIS", locked_redis)
    get_settings.cache_clear()
    store_prefect_secret("capplan-test-locked-redis", locked_redis)
    queues = [f"sec-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    r = Redis.from_url(locked_redis)
    for q in queues:
        instrument.declare_queue(r, q)
        instrument.enqueue(r, q, "job-1")
        instrument.heartbeat(r, q, "w1")
    common = {"slo": {"wait_p95_seconds": 30}, "mode": "advisory"}
    doc = {
        "policies": [
            {
                "name": "by-env",
                "queue": queues[0],
                "target": {"name": "w1"},
                **common,
                "source": {"kind": "list", "redis_url_ref": "env:CAPPLAN_TEST_LOCKED_REDIS"},
            },
            {
                "name": "by-block",
                "queue": queues[1],
                "target": {"name": "w2"},
                **common,
                "source": {
                    "kind": "list",
                    "redis_url_ref": "prefect-secret:capplan-test-locked-redis",
                },
            },
        ]
    }
    path = tmp_path / "policies.yaml"
    path.write_text(yaml.safe_dump(doc))
    from capplan_core.policy import load_policies

    plan_store().apply_policies(load_policies(path), actor="ops")

    report = collect_metrics(interval_s=60)
    assert report["errors"] == [] and report["rows_written"] == 2, report  # it authenticated
    results = __import__("asyncio").run(capacity_plan(approval="none"))
    assert {r["policy"] for r in results} == {"by-env", "by-block"}

    # a wrong reference fails that queue, naming the reference, not a value
    monkeypatch.delenv("CAPPLAN_TEST_LOCKED_REDIS")
    broken = collect_metrics(policies=["by-env"], interval_s=60)
    assert any("env:CAPPLAN_TEST_LOCKED_REDIS" in e for e in broken["errors"]), broken

    found: dict[str, int] = {}
    engine = create_engine(capplan_env)
    with engine.connect() as c:
        tables = [
            row[0] for row in c.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))
        ]
        dump = "\n".join(repr(list(c.execute(text(f'SELECT * FROM "{t}"')))) for t in tables)
    found["store"] = dump.count(PLANTED)
    assert "by-block" in dump and queues[0] in dump  # the search sees the data
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(limit=200)
        found["parameters"] = sum(
            json.dumps(run.parameters, default=str).count(PLANTED) for run in runs
        )
        logs = client.read_logs(limit=200)
        found["logs"] = sum(log.message.count(PLANTED) for log in logs)
        artifacts = client.read_artifacts(limit=200)
        found["artifacts"] = sum(
            json.dumps([a.data, a.description], default=str).count(PLANTED) for a in artifacts
        )
    assert runs and logs and artifacts
    assert found == {"store": 0, "parameters": 0, "logs": 0, "artifacts": 0}
    # the settings never print the cache URL either
    assert metrics_redis_url().split("//")[-1] not in repr(get_settings())
