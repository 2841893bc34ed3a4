"""Prefect's own flow runs, pruned through the Prefect client (retention, issue 21).

Only finished runs go: ``COMPLETED``, ``FAILED``, ``CANCELLED`` and ``CRASHED``, that ended
before the cutoff (or, with no end time, were due to start before it). A scheduled, pending,
running, paused (waiting for an approval), suspended or cancelling run is never touched, and
each run is checked again just before it is deleted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from capplan_core.utc import utc_datetime

#: the state types of a finished flow run
FINISHED = ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")
PAGE = 200


def _filters(older_than: datetime) -> list[Any]:
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterEndTime,
        FlowRunFilterExpectedStartTime,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    state = FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType(s) for s in FINISHED]))
    return [
        FlowRunFilter(state=state, end_time=FlowRunFilterEndTime(before_=older_than)),
        FlowRunFilter(
            state=state,
            end_time=FlowRunFilterEndTime(is_null_=True),
            expected_start_time=FlowRunFilterExpectedStartTime(before_=older_than),
        ),
    ]


def prune_flow_runs(older_than: datetime, *, dry_run: bool = False) -> dict[str, Any]:
    """Delete (``dry_run``: count) finished flow runs that ended before ``older_than``.

    Returns ``{"flow_runs": n, "older_than": iso}``. Reaches the Prefect API this process is
    configured for (``PREFECT_API_URL``).
    """
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    cutoff = utc_datetime(older_than)
    total = 0
    with get_client(sync_client=True) as client:
        for flt in _filters(cutoff):
            if dry_run:
                total += client.count_flow_runs(flow_run_filter=flt)
                continue
            seen: set[Any] = set()
            while True:
                runs = [
                    r
                    for r in client.read_flow_runs(flow_run_filter=flt, limit=PAGE)
                    if r.id not in seen
                ]
                if not runs:
                    break
                for run in runs:
                    seen.add(run.id)
                    try:  # read again: a finished run may have been retried since the page
                        state = client.read_flow_run(run.id).state
                        if state is None or state.type.value not in FINISHED:
                            continue
                        client.delete_flow_run(run.id)
                    except ObjectNotFound:
                        continue  # another prune took it
                    total += 1
    return {"flow_runs": total, "older_than": cutoff.isoformat()}
