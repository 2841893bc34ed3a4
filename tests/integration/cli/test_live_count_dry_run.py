"""Planning from the store with the dry-run scaler: the next plan starts from the count capplan
last wrote (kept in the store), not from the measured ``workers``, and shows the difference."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from capplan_app.bootstrap import plan_store
from capplan_core.planning.markdown import plan_markdown

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def _history(queue: str, now: datetime) -> list[dict]:
    """Two days at a steady 3 jobs/s of 0.5 s jobs, with 2 workers measured throughout, one row
    per 5-minute window up to the current one (so the first forecast window is the next)."""
    end = now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)
    return [
        {
            "queue_name": queue,
            "recorded_at": end - timedelta(minutes=5 * i),
            "arrival_rate": 3.0,
            "service_rate": 2.0,
            "backlog": 0.0,
            "workers": 2.0,
            "extra": {"service_time_scv": 0.05},
        }
        for i in range(2 * 24 * 12)
    ]


def _not_near_a_window_edge() -> datetime:
    """Now, at least 100 s before the next 5-minute boundary (the test plans twice within it)."""
    now = datetime.now(UTC)
    left_s = 300 - (now.minute % 5 * 60 + now.second)
    if left_s < 100:
        time.sleep(left_s + 1)
    return datetime.now(UTC)


def test_second_cycle_starts_from_the_count_the_first_wrote(
    prefect_server, capplan_env, tmp_path: Path
) -> None:
    from flows.capacity_plan import capacity_plan

    now = _not_near_a_window_edge()
    assert plan_store().record_metrics(_history("steady", now)) > 500
    policy = {
        "name": "steady",
        "queue": "steady",
        "mode": "auto",
        "target": {"namespace": "w", "name": "steady"},
        # a utilisation SLO: 2 workers run at 0.75, 3 are needed; the waits of the
        # current, partly elapsed window stay fine, so the plan is auto-approvable
        "slo": {"max_utilization": 0.6},
        "scaling": {
            "min_workers": 1,
            "max_workers": 20,
            "max_step": 10,
            "cooldown_seconds": 0,
            "auto_max_change": 10,
            "startup_seconds": 0,
        },
        "approval": {"timeout_seconds": 20},  # a manual fallback must not hang the test
        "forecast": {
            "model": "naive",
            "interval_minutes": 5,
            "seasonality": [],
            "horizon_hours": 1,
        },
        "simulation": {"replications": 40},
    }
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"policies": [policy]}))

    from capplan_core.policy import load_policies

    plan_store().apply_policies(load_policies(path), actor="test")
    first = asyncio.run(capacity_plan(policies=["steady"], approval_poll_s=1))[0]
    assert first["current_workers"] == 2 and first["target_workers"] > 2, first
    assert first["steps"][0]["status"] == "applied", first
    wrote = first["steps"][0]["to_workers"]
    assert plan_store().last_written_workers("steady") == wrote

    second = asyncio.run(capacity_plan(policies=["steady"], approval_poll_s=1))[0]
    assert second["current_workers"] == wrote, second  # not the measured 2
    stored = plan_store().get_plan(second["id"])
    state = stored.details["state"]
    assert (state["measured_workers"], state["workers_differ"]) == (2, True)
    assert state["replica_source"] == "dry run: last count capplan wrote"
    md = plan_markdown(second, stored.details)
    assert (
        f"the plan starts from {wrote} (dry run: last count capplan wrote); the newest "
        "metrics measured 2" in md
    )
