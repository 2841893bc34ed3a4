"""After Prefect's database was restored: end the runs the restore left in flight.

A restored Prefect database holds the flow runs that were ``PENDING``, ``RUNNING`` or
``CANCELLING`` at the restore point, and with them the deployment concurrency slots they held.
Their processes did not survive the disaster (or run on against a history the database no
longer has), and nothing else will end them: the leases that would have expired them lived
in the server's lease storage, not in the database, and the restarted server starts with none.
So every deployment with a concurrency limit (``capacity-plan``, ``apply-due``,
``collect-metrics``: one run at a time, new runs cancelled while one holds the slot) would
cancel every new run for good. This marks such runs ``Crashed`` with the reason, which
releases their slots (Prefect's ``ReleaseFlowConcurrencySlots``, also without a lease).

Only runs whose state is from before the restore point are touched: a run started after the
restore is alive. Paused and suspended runs (waiting for an approval) are left as they are:
the approval can still resume them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from capplan_core.utc import utc_datetime

IN_FLIGHT = ("PENDING", "RUNNING", "CANCELLING")
REASON = (
    "restored from backup: this run was in flight at the restore point and its process "
    "did not survive; crashed so its concurrency slot is released"
)
PAGE = 200


def crash_runs_in_flight(restored_to: datetime) -> list[dict[str, Any]]:
    """Mark ``Crashed`` every flow run in :data:`IN_FLIGHT` whose state was set at or before
    ``restored_to`` (the restore point: the last transaction the restore replayed). Returns
    ``[{"id", "name", "was"}]``. Reaches the Prefect API this process is configured for."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    cutoff = utc_datetime(restored_to)
    flt = FlowRunFilter(state=FlowRunFilterState(type={"any_": [StateType(s) for s in IN_FLIGHT]}))
    crashed: list[dict[str, Any]] = []
    with get_client(sync_client=True) as client:
        found: dict[Any, Any] = {}
        while True:  # read them all first: crashing one moves it out of the filter
            runs = client.read_flow_runs(flow_run_filter=flt, limit=PAGE, offset=len(found))
            found.update((r.id, r) for r in runs)
            if len(runs) < PAGE:
                break
        for run in found.values():
            state = run.state
            if state is None or utc_datetime(state.timestamp) > cutoff:
                continue
            client.set_flow_run_state(run.id, Crashed(message=REASON), force=True)
            crashed.append({"id": str(run.id), "name": run.name, "was": state.type.value})
    return crashed
