"""Invariants of time that integration tests check on a stored plan (issue 21)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from capplan_core.planning.stored_plan import StepStatus


def assert_applied_only_when_due(store: Any, plan_id: int) -> None:
    """No step of the plan was applied before its ``execute_at``; every step that is still
    pending has been scheduled (an apply-step run, or the apply-due sweeper) at or after its
    time, and every cluster write happened at or after the step's time."""
    plan = store.get_plan(plan_id)
    scheduled = {
        e.details["step_id"]: e.details
        for e in store.audit_events(plan_id=plan_id, action="step_scheduled")
    }
    for st in plan.steps:
        if st.status in (StepStatus.APPLIED, StepStatus.NOOP):
            assert st.applied_at >= st.execute_at, (st, "applied before it was due")
        elif st.status == StepStatus.PENDING:
            assert st.id in scheduled, (st, "neither applied nor scheduled")
            run_at = datetime.fromisoformat(scheduled[st.id]["run_at"])
            assert run_at >= st.execute_at, (st, scheduled[st.id])
    for ev in store.audit_events(plan_id=plan_id, action="scale"):
        assert ev.at >= datetime.fromisoformat(ev.details["execute_at"]), ev
