"""The restore drill's checker: what the store held just before the disaster, and the
invariants after the restore (bench/dr_drill.py). It reads the store with its own SQL and
Prefect through its API, never capplan's code paths.

* **plans lost**: plans the store held before the disaster that the restored store lacks
  (the RPO's plans); every id handed out after the restore is new, so an id is one plan;
* **steps applied twice**: a step written (a ``scale`` audit row) before the disaster and
  written again after the restore, or written twice in the restored store;
* **approvals**: each plan that waited for a person at the disaster (its run paused with its
  form) is, after the restore, *resumable* (still proposed, its run paused with its form),
  *expired* or *cancelled* (with the reason), *superseded* (a newer plan took its place, named
  by the audit), *lost* (the restore point predates it), or *other* (decided meanwhile, or a
  run not paused: limbo, which must not be, right after the restore).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import create_engine, text


def _sql(url: str, query: str, **params: Any) -> list[Any]:
    engine = create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as c:
            return list(c.execute(text(query), params))
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Snapshot:
    """The store the moment before the disaster."""

    at: datetime
    plans: dict[int, str]  # id -> status
    scaled: frozenset[tuple[int, int]]  # (plan id, step id) written to the pool
    waiting: dict[int, str]  # plans waiting for a person -> their flow run id
    audit_rows: int


def snapshot(url: str, api_url: str) -> Snapshot:
    now = _sql(url, "SELECT clock_timestamp()")[0][0]
    plans = {int(i): s for i, s in _sql(url, "SELECT id, status FROM capacity_plan")}
    return Snapshot(
        now,
        plans,
        frozenset(_scaled(url)),
        waiting_paused(url, api_url),
        int(_sql(url, "SELECT count(*) FROM audit_event")[0][0]),
    )


def waiting_paused(url: str, api_url: str) -> dict[int, str]:
    """The plans waiting for a person right now: proposed, before their approval deadline,
    their ``approve-plan`` run paused in Prefect with its form saved -> that run's id."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from capplan_cli.approvals import _form_ready

    candidates = {
        int(i): str(run)
        for i, run in _sql(
            url,
            "SELECT id, flow_run_id FROM capacity_plan WHERE status = 'proposed' AND "
            "details ? 'approval_deadline' AND (details->>'approval_deadline')::timestamptz > "
            "clock_timestamp() AND flow_run_id IS NOT NULL",
        )
    }
    out = {}
    with (
        temporary_settings(updates={PREFECT_API_URL: api_url}),
        get_client(sync_client=True) as client,
    ):
        for plan_id, run_id in candidates.items():
            state = client.read_flow_run(UUID(run_id)).state
            if state is not None and state.is_paused() and _form_ready(client, UUID(run_id), state):
                out[plan_id] = run_id
    return out


def _scaled(url: str, after_id: int = 0) -> list[tuple[int, int]]:
    return [
        (int(p), int(s))
        for p, s in _sql(
            url,
            "SELECT plan_id, (details->>'step_id')::int FROM audit_event WHERE action = "
            "'scale' AND id > :after AND details ? 'step_id'",
            after=after_id,
        )
    ]


def restore_audit(url: str) -> dict[str, Any] | None:
    """The newest ``store_restored`` row and the ``restore_recovered`` after it."""
    rows = _sql(
        url,
        "SELECT id, at, details FROM audit_event WHERE action = 'store_restored' "
        "ORDER BY id DESC LIMIT 1",
    )
    if not rows:
        return None
    rid, at, details = rows[0]
    rec = _sql(
        url,
        "SELECT details FROM audit_event WHERE action = 'restore_recovered' AND "
        "id > :id ORDER BY id LIMIT 1",
        id=rid,
    )
    return {"id": int(rid), "at": at, "details": details, "recovered": rec[0][0] if rec else None}


def plans_lost(url: str, before: Snapshot) -> list[int]:
    kept = {int(i) for (i,) in _sql(url, "SELECT id FROM capacity_plan")}
    return sorted(set(before.plans) - kept)


def steps_applied_twice(url: str, before: Snapshot, restored_audit_id: int) -> dict[str, Any]:
    """Writes after the restore of steps already written before the disaster, and steps
    with more than one write in the restored store."""
    after = _scaled(url, restored_audit_id)
    again = sorted({k for k in after if k in before.scaled})
    per_step = Counter(_scaled(url))
    twice_in_store = sorted(k for k, n in per_step.items() if n > 1)
    return {
        "count": len(again) + len(twice_in_store),
        "written_again": again,
        "twice_in_restored_store": twice_in_store,
        "writes_after_restore": len(after),
    }


def approvals(url: str, before: Snapshot, api_url: str) -> dict[str, Any]:
    """Each plan that waited for a person at the disaster, as the restore left it."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from capplan_cli.approvals import _form_ready

    out: dict[str, list[Any]] = {
        "resumable": [],
        "expired": [],
        "cancelled": [],
        "superseded": [],
        "lost": [],
        "other": [],
    }
    rows = {
        int(i): (s, c)
        for i, s, c in _sql(
            url,
            "SELECT id, status, decision_comment FROM capacity_plan WHERE id = ANY(:ids)",
            ids=list(before.waiting),
        )
    }
    with (
        temporary_settings(updates={PREFECT_API_URL: api_url}),
        get_client(sync_client=True) as client,
    ):
        for plan_id, run_id in sorted(before.waiting.items()):
            if plan_id not in rows:
                out["lost"].append(plan_id)
                continue
            status, comment = rows[plan_id]
            if status in ("expired", "cancelled"):
                out[status].append({"plan": plan_id, "reason": comment})
                continue
            if status == "superseded":  # a newer plan took its place (audited, with it)
                by = _sql(
                    url,
                    "SELECT details->>'by_plan' FROM audit_event WHERE plan_id = "
                    ":id AND action = 'superseded' ORDER BY id DESC LIMIT 1",
                    id=plan_id,
                )
                out["superseded"].append(
                    {
                        "plan": plan_id,
                        "reason": f"superseded by plan {by[0][0]}" if by and by[0][0] else None,
                    }
                )
                continue
            if status != "proposed":
                out["other"].append({"plan": plan_id, "status": status, "reason": comment})
                continue
            state = client.read_flow_run(UUID(run_id)).state
            if state is not None and state.is_paused() and _form_ready(client, UUID(run_id), state):
                out["resumable"].append(plan_id)
            else:
                out["other"].append(
                    {"plan": plan_id, "status": status, "run": state.name if state else None}
                )
    return out
