"""Helpers for flow tests against the real Prefect server."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from capplan_app.bootstrap import DEMO_METRICS, DEMO_POLICIES

#: the bundled demo metrics: capacity-plan's default is the store
DEMO_INPUTS = {"metrics_path": str(DEMO_METRICS)}


class FlowThread:
    """Run capacity-plan in a thread, as a scheduled run would, and collect its results.

    ``policy_path`` (default: the demo policies) is applied to the store first, as an
    operator would (`capplan policies apply`), with the test approvers; the run plans the
    stored policies by name.
    """

    def __init__(self, policy_path: str | None = None, **params: Any) -> None:
        from flows.capacity_plan import capacity_plan
        from tests.approvers import apply_policy_file

        names = apply_policy_file(policy_path or DEMO_POLICIES)
        params.setdefault("policies", names)
        self.box: dict[str, Any] = {}

        def run() -> None:
            try:
                self.box["results"] = asyncio.run(capacity_plan(approval_poll_s=1, **{
                    **DEMO_INPUTS, **params}))
            except BaseException as err:  # noqa: BLE001 - re-raised in join
                self.box["error"] = err

        self.started = datetime.now(UTC)
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def alive(self) -> bool:
        return self.thread.is_alive()

    def join(self, timeout_s: float = 600) -> dict[str, dict[str, Any]]:
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), "capacity-plan did not finish"
        if "error" in self.box:
            raise self.box["error"]
        return {r["queue"]: r for r in self.box["results"]}


def state_names(flow_run_id: str) -> list[str]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return [s.name for s in client.read_flow_run_states(UUID(flow_run_id))]


def plan_events(plan_id: int, *, expect: set[str], timeout_s: float = 30) -> set[str]:
    """Names of capplan.plan.* events about ``plan_id`` (waits until ``expect`` are there)."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    flt = EventFilter(event=EventNameFilter(prefix=["capplan.plan."]),
                      resource=EventResourceFilter(id=[f"capplan.plan.{plan_id}"]))
    deadline = time.monotonic() + timeout_s
    names: set[str] = set()
    while time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            names = {e.event for e in client.read_events(filter=flt, limit=50).events}
        if expect <= names:
            break
        time.sleep(0.5)
    return names
