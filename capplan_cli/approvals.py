"""Resume a paused plan run with an approval form, through the Prefect API."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from capplan_core.approval.refusals import already_decided
from capplan_core.planning.repository import PlanRepository
from capplan_core.planning.stored_plan import PlanStatus, StoredPlan


class ApprovalError(RuntimeError):
    """The plan cannot take this decision (already decided, not paused, unknown)."""


def resume_with_decision(
    store: PlanRepository,
    plan_id: int,
    *,
    decision: str,
    approver: str,
    code: str,
    comment: str = "",
    max_workers: int | None = None,
    apply_hours: float | None = None,
) -> str:
    """Send the decision, with the approver's approval code, to the paused run of
    ``plan_id``; returns its flow run id. The run checks the code before storing anything."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.flow_runs import resume_flow_run

    plan = store.get_plan(plan_id)
    if plan.status != PlanStatus.PROPOSED:
        raise ApprovalError(
            f"{already_decided(plan_id, plan.status, plan.decided_by)}: a plan takes one decision"
        )
    if not plan.flow_run_id:
        raise ApprovalError(f"plan {plan_id} ({plan.mode}) is not waiting for approval")
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(plan.flow_run_id))
    if run.state is None or not run.state.is_paused():
        state = run.state.name if run.state else "unknown"
        raise ApprovalError(
            f"plan {plan_id}: its flow run {plan.flow_run_id} is {state}, not paused for approval"
        )
    form: dict[str, Any] = {
        "decision": decision,
        "approver": approver,
        "comment": comment,
        "approval_code": code,
    }
    if max_workers is not None:
        form["max_workers"] = max_workers
    if apply_hours is not None:
        form["apply_hours"] = apply_hours
    resume_flow_run(UUID(plan.flow_run_id), run_input=form)
    return plan.flow_run_id


def await_outcome(
    store: PlanRepository, plan_id: int, *, refusals_before: int, timeout_s: float = 60
) -> tuple[str, str | None]:
    """Wait until the run has taken or refused a sent decision: ("decided", None) when the
    plan left ``proposed``, ("refused", reason) for a new ``decision_refused`` audit, or
    ("pending", None) when neither happened within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if store.get_plan(plan_id).status != PlanStatus.PROPOSED:
            return "decided", None
        refusals = store.audit_events(plan_id=plan_id, action="decision_refused")
        if len(refusals) > refusals_before:
            return "refused", str(refusals[-1].details.get("reason"))
        time.sleep(0.5)
    return "pending", None


def _form_ready(client: Any, flow_run_id: Any, state: Any) -> bool:
    """Whether the paused run has saved its approval form: Prefect sets the Paused state first
    and saves the form's schema after, so a decision sent in between has no form to meet."""
    import httpx
    from prefect.input.run_input import keyset_from_paused_state

    try:
        client.read_flow_run_input(flow_run_id, keyset_from_paused_state(state)["schema"])
    except httpx.HTTPStatusError as err:
        if err.response.status_code == 404:
            return False
        raise
    return True


def wait_for_paused_plan(
    store: PlanRepository,
    queue: str,
    *,
    since: datetime,
    timeout_s: float = 300,
    stop: Callable[[], bool] = lambda: False,
) -> StoredPlan | None:
    """Wait until the plan of ``queue`` created after ``since`` is paused awaiting approval.

    Returns None when that plan ended another way (skipped, auto-approved, advisory) or when
    ``stop()`` says the run is over.
    """
    from uuid import UUID

    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        plans = [p for p in store.list_plans(queue=queue, limit=5) if p.created_at >= since]
        for plan in plans:
            if plan.status != PlanStatus.PROPOSED:
                return None
            if plan.flow_run_id:
                with get_client(sync_client=True) as client:
                    run = client.read_flow_run(UUID(plan.flow_run_id))
                    ready = (
                        run.state is not None
                        and run.state.is_paused()
                        and _form_ready(client, run.id, run.state)
                    )
                if ready:
                    return plan
        if stop():
            return None
        time.sleep(0.5)
    raise TimeoutError(f"no paused plan for queue {queue!r} within {timeout_s:.0f} s")
