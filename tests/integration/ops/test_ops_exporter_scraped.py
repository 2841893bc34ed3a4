"""`capplan exporter` over a filled store (SQLite and PostgreSQL), scraped by a real Prometheus.

The store holds two cycles, decided and waiting plans, steps in several outcomes, audit events
and the newest plan's forecast against recorded arrivals; the test asserts the values that
Prometheus's query API returns for each metric.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ops_prometheus import query, values_by
from sqlalchemy import update

from capplan_adapters.store.db import open_store
from capplan_adapters.store.models import CapacityPlanRow, ScalingStepRow
from capplan_adapters.store.repo import PlanStore
from capplan_core.planning.stored_plan import ForecastPoint, PlanDraft, StepDraft
from capplan_core.policy import parse_policies
from tests.service_helpers import answers_ok, free_port, prometheus_scraping, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
NOW = datetime.now(UTC).replace(microsecond=0)
A1, A2 = NOW - timedelta(hours=2), NOW - timedelta(minutes=30)
WINDOW = timedelta(minutes=15)
FC_START = NOW - timedelta(minutes=60)


def _policies() -> list:
    return parse_policies(
        {
            "policies": [
                {
                    "name": q,
                    "queue": q,
                    "mode": "manual",
                    "target": {"namespace": "workers", "name": f"{q}-worker"},
                    "slo": {"wait_p95_seconds": 30},
                }
                for q in ("a", "b", "c", "d")
            ]
        }
    )


def _plan(
    store: PlanStore,
    queue: str,
    as_of: datetime,
    status: str,
    created: datetime,
    decided_after_s: float | None = None,
    steps: tuple[str, ...] = (),
) -> int:
    skipped = "no usable history" if status == "skipped" else None
    pid = store.create_plan(
        PlanDraft(
            policy_name=queue,
            queue=queue,
            mode="manual",
            current_workers=2,
            target_workers=4,
            confidence=0.9,
            slo_achievable=True,
            as_of=as_of,
            skipped_reason=skipped,
            steps=[StepDraft(created + i * WINDOW, 2, 4, "ramp") for i in range(len(steps))],
            details={"policy": queue},
        )
    )
    decided = None if decided_after_s is None else created + timedelta(seconds=decided_after_s)
    with store.session() as s, s.begin():  # times and outcomes as a real history left them
        s.execute(
            update(CapacityPlanRow)
            .where(CapacityPlanRow.id == pid)
            .values(status=status, created_at=created, decided_at=decided)
        )
        for seq, st in enumerate(steps):
            s.execute(
                update(ScalingStepRow)
                .where(ScalingStepRow.plan_id == pid, ScalingStepRow.seq == seq)
                .values(status=st)
            )
    return pid


def fill(store: PlanStore) -> int:
    """Two cycles; returns the id of the plan whose forecast is compared (queue a, cycle 2)."""
    store.apply_policies(_policies(), actor="test")
    old_a = _plan(store, "a", A1, "superseded", A1, decided_after_s=600, steps=("cancelled",))
    _plan(store, "b", A1, "skipped", A1 + timedelta(seconds=20))
    _plan(store, "c", A1, "proposed", A1 + timedelta(seconds=30))  # advisory: waits for no one
    new_a = _plan(store, "a", A2, "approved", A2, decided_after_s=120, steps=("applied", "failed"))
    waiting = _plan(store, "b", A2, "proposed", A2 + timedelta(seconds=10), steps=("pending",))
    store.set_flow_run(waiting, "run-b", approval_deadline=A2 + timedelta(hours=1))
    _plan(store, "c", A2, "skipped", A2 + timedelta(seconds=30))
    store.audit("scale", actor="t", plan_id=new_a, queue="a")
    for _ in range(2):
        store.audit("scale_failed", actor="t", plan_id=new_a, queue="a")

    def points(rates: list[float]) -> list[ForecastPoint]:
        return [
            ForecastPoint("a", FC_START + i * WINDOW, r, r * 0.8, r * 1.2, 0.8, "ewma")
            for i, r in enumerate(rates)
        ]

    store.save_forecast(old_a, points([99.0] * 8))  # an older plan: not compared
    store.save_forecast(new_a, points([10.0] * 8))
    observed = {0: 12.0, 1: 8.0, 2: 10.0}  # window 3 has no rows; 4.. have not passed
    store.record_metrics(
        {
            "queue_name": "a",
            "recorded_at": FC_START + w * WINDOW + timedelta(minutes=m),
            "arrival_rate": rate,
            "service_rate": 1.0,
            "backlog": 0.0,
            "workers": 4.0,
        }
        for w, rate in observed.items()
        for m in (0, 5, 10)
    )
    return new_a


def _reset_clock() -> None:
    """The store's history is laid out relative to the time the test runs, not the time this
    module was collected (a full suite collects it many minutes earlier)."""
    global NOW, A1, A2, FC_START
    NOW = datetime.now(UTC).replace(microsecond=0)
    A1, A2 = NOW - timedelta(hours=2), NOW - timedelta(minutes=30)
    FC_START = NOW - timedelta(minutes=60)


@pytest.fixture
def exporter(store_url: str, tmp_path: Path) -> Iterator[tuple[str, int]]:
    _reset_clock()
    open_store.cache_clear()
    plan_id = fill(open_store(store_url))
    port = free_port()
    env = {**os.environ, "CAPPLAN_DATABASE_URL": store_url, "CAPPLAN_DATA_DIR": str(tmp_path)}
    log = (tmp_path / "exporter.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "capplan_cli.main", "exporter", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def serving() -> bool:
        assert proc.poll() is None, (tmp_path / "exporter.log").read_text()
        return answers_ok(f"http://127.0.0.1:{port}/metrics", timeout_s=2)

    try:
        wait_until(serving, 120, "capplan exporter serving /metrics")
        yield f"127.0.0.1:{port}", plan_id
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


def test_prometheus_scrapes_the_exporter_and_sees_the_stores_numbers(
    exporter: tuple[str, int], tmp_path: Path
) -> None:
    target, plan_id = exporter
    with prometheus_scraping(target, tmp_path / "prom") as prom:
        wait_until(
            lambda: bool(query(prom, "capplan_exporter_store_up == 1")), 60, "a successful scrape"
        )
        assert query(prom, 'up{job="capplan"}')[0]["value"][1] == "1"

        assert values_by(prom, "capplan_cycle_queues", "outcome") == {
            "planned": 2.0,
            "skipped": 1.0,
            "failed": 0.0,
            "missing": 1.0,
        }
        assert float(query(prom, "capplan_cycle_duration_seconds")[0]["value"][1]) == 30.0
        last_ok = float(query(prom, "capplan_cycle_last_success_timestamp_seconds")[0]["value"][1])
        assert last_ok == (A2 + timedelta(seconds=30)).timestamp()
        age = float(
            query(prom, "time() - capplan_cycle_last_success_timestamp_seconds")[0]["value"][1]
        )
        # the store's cycle ended at A2 + 30 s (times fixed when this module was collected,
        # possibly long before this test runs in a full suite)
        expected_age = datetime.now(UTC).timestamp() - last_ok
        assert expected_age - 120 < age <= expected_age + 5

        plans = values_by(prom, "capplan_plans", "status")
        assert {k: v for k, v in plans.items() if v} == {
            "superseded": 1.0,
            "skipped": 2.0,
            "approved": 1.0,
            "proposed": 2.0,
        }
        steps = values_by(prom, "capplan_steps", "status")
        assert {k: v for k, v in steps.items() if v} == {
            "cancelled": 1.0,
            "applied": 1.0,
            "failed": 1.0,
            "pending": 1.0,
        }
        assert values_by(prom, "capplan_audit_events", "action") == {
            "scale": 1.0,
            "scale_failed": 2.0,
            "guard_refused": 0.0,
            "guard_deferred": 0.0,
            "drift": 0.0,
        }

        waits = 'capplan_plan_approval_wait_seconds_{}{{decision="approved"{}}}'
        assert float(query(prom, waits.format("count", ""))[0]["value"][1]) == 2.0
        assert float(query(prom, waits.format("sum", ""))[0]["value"][1]) == 720.0
        assert float(query(prom, waits.format("bucket", ',le="300"'))[0]["value"][1]) == 1.0
        oldest = float(
            query(prom, "capplan_plan_awaiting_approval_oldest_age_seconds")[0]["value"][1]
        )
        # b, proposed at A2 + 10 s (not advisory c); A2 is fixed at collection time
        expected_oldest = (datetime.now(UTC) - (A2 + timedelta(seconds=10))).total_seconds()
        assert expected_oldest - 120 < oldest <= expected_oldest + 5

        assert values_by(prom, "capplan_forecast_plan_id", "queue") == {"a": float(plan_id)}
        assert values_by(prom, "capplan_forecast_windows_compared", "queue") == {"a": 3.0}
        mae = values_by(prom, "capplan_forecast_mae_jobs_per_second", "queue")["a"]
        mape = values_by(prom, "capplan_forecast_mape_ratio", "queue")["a"]
        assert mae == pytest.approx(4 / 3)
        assert mape == pytest.approx((2 / 12 + 2 / 8 + 0) / 3)


def test_exporter_on_a_taken_port_exits_1_naming_the_address(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            **os.environ,
            "CAPPLAN_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}",
            "CAPPLAN_DATA_DIR": str(tmp_path),
        }
        r = subprocess.run(
            [sys.executable, "-m", "capplan_cli.main", "exporter", "--port", str(port)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in " ".join((r.stdout + r.stderr).split())
