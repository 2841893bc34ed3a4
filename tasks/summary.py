"""Read a stored plan back as the JSON users see (plus its details for artifacts)."""

from __future__ import annotations

from typing import Any

from capplan_app.bootstrap import plan_store
from capplan_core.planning.records import plan_summary
from tasks.common import capplan_io_task


def plan_view(plan_id: int, note: str | None = None) -> dict[str, Any]:
    plan = plan_store().get_plan(plan_id)
    out = plan_summary(plan, plan.details.get("policy"))
    out["details"] = plan.details
    out["explanation"] = [
        {"execute_at": s.execute_at.isoformat(), "to_workers": s.to_workers,
         **{k: v for k, v in (s.explanation or {}).items() if not isinstance(v, dict | list)}}
        for s in plan.steps
    ]
    if note:
        out["note"] = note
    return out


summarize = capplan_io_task(plan_view, name="read-plan")


def find_own_plan(flow_run_id: str) -> dict[str, Any] | None:
    """The proposed plan this flow run already made (a suspended run that was resumed)."""
    from capplan_core.store.models import PlanStatus

    plan = plan_store().plan_for_flow_run(flow_run_id)
    if plan is None or plan.status != PlanStatus.PROPOSED:
        return None
    return plan_view(plan.id)
