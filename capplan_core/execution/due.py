"""Apply every due step of the approved plans, in order: what ``capplan plans apply-due``
and the apply-step flow share.

Outcomes are reported as ``applied``, ``noop``, ``deferred``, ``refused``, ``expired``,
``cancelled`` or ``failed``; a step another run had already finished is a ``noop`` for this
run (the reason says who did it), so concurrent runs never both report ``applied``.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from capplan_core.approval.authority import AuthorityCheck
from capplan_core.execution.executor import (
    StepResult,
    apply_step,
)
from capplan_core.execution.ordering import RESOLVE_STATUSES, due_steps, stranded_steps
from capplan_core.execution.scaler import Scaler
from capplan_core.execution.write import RetryPolicy
from capplan_core.planning.repository import PlanRepository
from capplan_core.planning.stored_plan import PlanStatus, StoredPlan

#: How many of the newest plans of each ended status the sweeper looks through for steps a
#: dead run left claimed or in doubt.
RESOLVE_LOOKBACK = 200
OUTCOMES = ("applied", "noop", "deferred", "refused", "expired", "cancelled", "failed")


@dataclass(frozen=True)
class DueRun:
    """How one apply-due run behaves: who it is, its leases, retries and fault hook."""

    run_id: str
    actor: str = "capplan"
    lease_s: float = 60.0
    lease_wait_s: float = 10.0
    wait_ready_s: float = 0.0
    cooldown_scope_plan: bool = False
    retry: RetryPolicy | None = None
    hook: Callable[[str], None] | None = None
    authority: AuthorityCheck | None = None  # the approval re-checked before each write


def public_outcome(result: StepResult) -> dict[str, Any]:
    """``{step_id, outcome, reason}`` with ``outcome`` in :data:`OUTCOMES`."""
    if result.outcome.startswith("already-"):
        status = result.outcome.removeprefix("already-")
        return {
            "step_id": result.step_id,
            "outcome": "noop",
            "reason": f"already {status} (by another run); nothing done",
        }
    return {"step_id": result.step_id, "outcome": result.outcome, "reason": result.reason}


def apply_due(
    store: PlanRepository,
    scaler_for: Callable[[StoredPlan, int], Scaler],
    *,
    run: DueRun,
) -> list[dict[str, Any]]:
    """Apply each open, due step of every approved plan (plan by plan, step by step), and
    resolve the steps a dead run left claimed or in doubt on plans no longer approved
    (:func:`~capplan_core.execution.ordering.stranded_steps`); return ``{plan_id, step_id,
    outcome, reason, plan_failed}`` per step. "Due" is on the store's clock
    (``store.now()``), as in :func:`apply_step`.

    ``scaler_for(plan, step_id)`` gives the scaler for a step (a dry run's live count depends
    on the plan's progress, so it is asked per step, with the plan as stored now).
    """
    out = []
    now = store.now()
    approved = store.list_plans(status=PlanStatus.APPROVED, limit=1000)
    ended = [
        p
        for status in RESOLVE_STATUSES
        for p in store.list_plans(status=status, limit=RESOLVE_LOOKBACK)
    ]
    # stranded steps first: their read-back must see the target before any new write
    for plan_id, step_id in stranded_steps(ended, now) + due_steps(approved, now):
        plan = store.get_plan(plan_id)
        policy = store.policy_for_plan(plan)
        limits = store.approval_limits(plan_id)
        result = apply_step(
            store,
            scaler_for(plan, step_id),
            policy,
            plan_id,
            step_id,
            actor=run.actor,
            run_id=run.run_id,
            max_workers=limits.get("max_workers"),
            wait_ready_s=run.wait_ready_s,
            cooldown_scope_plan=run.cooldown_scope_plan,
            lease_s=run.lease_s,
            retry=run.retry,
            hook=run.hook,
            lease_wait_s=run.lease_wait_s,
            authority=run.authority,
        )
        out.append(
            {"plan_id": plan_id, **public_outcome(result), "plan_failed": result.plan_failed}
        )
    return out


def self_kill_hook(at: str | None) -> Callable[[str], None] | None:
    """Fault injection: a hook that SIGKILLs this process at the point named ``at``
    (``claimed``, ``applying`` or ``written``); None when ``at`` is empty."""
    if not at:
        return None

    def hook(point: str) -> None:
        if point == at:
            os.kill(os.getpid(), signal.SIGKILL)

    return hook
