"""Helpers for flow tests against the real Prefect server."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from capplan_app.bootstrap import DEMO_METRICS, DEMO_POLICIES

_RECENT: dict[str, Any] = {}
#: how long one shifted copy of the demo metrics is used: a test plans on data that ends at
#: most this long before its wall clock, as collect-metrics would give it (a copy made once
#: per xdist worker could be tens of minutes old by a later test file)
RECENT_MAX_AGE_S = 120.0


def recent_demo_metrics() -> str:
    """The bundled demo metrics shifted to end at the current minute (made again when the
    last copy is older than :data:`RECENT_MAX_AGE_S`), as if collect-metrics had been
    running: a run that saves plans plans at the wall clock."""
    if "path" not in _RECENT or time.monotonic() - _RECENT["made"] > RECENT_MAX_AGE_S:
        import tempfile

        from capplan_core.metrics.file_source import read_metrics_file
        from capplan_core.metrics.transfer import shifted_to_end, write_metrics_frame

        out = Path(tempfile.mkdtemp(prefix="capplan-demo-now-")) / "metrics.csv.gz"
        write_metrics_frame(shifted_to_end(read_metrics_file(DEMO_METRICS), datetime.now(UTC)), out)
        _RECENT.update(path=str(out), made=time.monotonic())
    return str(_RECENT["path"])


class FlowThread:
    """Run capacity-plan in a thread, as a scheduled run would, and collect its results.

    ``policy_path`` (default: the demo policies) is applied to the store first, as an
    operator would (`capplan policies apply`), with the test approvers (who prove decisions
    with approval codes unless ``proof`` is None: then as the file says, by default signed);
    the run plans the stored policies by name.
    """

    def __init__(
        self, policy_path: str | None = None, *, proof: str | None = "code", **params: Any
    ) -> None:
        from flows.capacity_plan import capacity_plan
        from tests.approvers import apply_policy_file

        names = apply_policy_file(policy_path or DEMO_POLICIES, proof=proof)
        params.setdefault("policies", names)
        self.box: dict[str, Any] = {}

        def run() -> None:
            try:
                self.box["results"] = asyncio.run(
                    capacity_plan(
                        approval_poll_s=1, **{"metrics_path": recent_demo_metrics(), **params}
                    )
                )
            except BaseException as err:  # noqa: BLE001 - re-raised in join
                self.box["error"] = err

        self.started = datetime.now(UTC)
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def alive(self) -> bool:
        """The cycle, or an approve-plan run it started here, is still running."""
        from tasks.approval_runs import local_approval_runs_alive

        return self.thread.is_alive() or local_approval_runs_alive()

    def join(self, timeout_s: float = 600) -> dict[str, dict[str, Any]]:
        """The cycle's result per queue, read back from the store after the cycle and every
        approve-plan run it started in this process have finished."""
        from tasks.approval_runs import join_local_approval_runs
        from tasks.summary import plan_view

        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), "capacity-plan did not finish"
        if "error" in self.box:
            raise self.box["error"]
        assert join_local_approval_runs(timeout_s) == [], "an approve-plan run did not finish"
        from capplan_app.bootstrap import plan_store

        store = plan_store()
        return {
            r["queue"]: (plan_view(store.get_plan(r["id"])) if r.get("id") else r)
            for r in self.box["results"]
        }


def state_names(flow_run_id: str) -> list[str]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return [s.name for s in client.read_flow_run_states(UUID(flow_run_id))]


def plan_events(plan_id: int, *, expect: set[str], timeout_s: float = 30) -> set[str]:
    """Names of capplan.plan.* events about ``plan_id`` (waits until ``expect`` are there)."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    flt = EventFilter(
        event=EventNameFilter(prefix=["capplan.plan."]),
        resource=EventResourceFilter(id=[f"capplan.plan.{plan_id}"]),
    )
    deadline = time.monotonic() + timeout_s
    names: set[str] = set()
    while time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            names = {e.event for e in client.read_events(filter=flt, limit=50).events}
        if expect <= names:
            break
        time.sleep(0.5)
    return names
