"""apply-due: the sweeper that makes sure nothing approved is orphaned (every minute).

An approved plan's steps are normally applied by the execute stage (a step due now) and by
scheduled apply-step runs (later steps). Runs get lost: a worker killed mid-step, a crashed
execute, a deferred first step, a scheduled run that never started. This flow applies whatever
is due and not applied (each step claimed on the store's clock, so it is safe beside
apply-step runs and itself), expires what is stale, expires plans whose approval deadline
passed, and marks ``cancelled`` the plans whose approval run ended without a decision.

A step that expires here because its window passed unapplied (its run died mid-step and the
takeover came too late) leaves the pool short of what its plan asked for; rather than wait a
whole cycle, the sweeper asks capacity-plan to re-plan that one queue now.
"""

from typing import Any

from prefect import flow, get_run_logger

from capplan_core.execution.executor import DEFAULT_LEASE_S
from tasks.approval_runs import cancel_orphaned_approvals
from tasks.common import capplan_io_task
from tasks.execute import LeaseSeconds, apply_due_steps, policies_to_replan, request_replan
from tasks.restore import restore_check
from tasks.stages import expire_undecided_plans

cancel_orphans = capplan_io_task(cancel_orphaned_approvals, name="cancel-orphaned-approvals")


@flow(name="apply-due", log_prints=True)
def apply_due_flow(
    lease_s: LeaseSeconds = DEFAULT_LEASE_S,
) -> dict[str, Any]:
    logger = get_run_logger()
    restore_check("apply-due")  # a restored store is settled before anything is applied
    expired = expire_undecided_plans()
    cancelled = cancel_orphans()
    done = apply_due_steps(lease_s)
    for d in done:
        logger.info(
            "plan %s step %s: %s — %s", d["plan_id"], d["step_id"], d["outcome"], d["reason"]
        )
    if expired or cancelled:
        logger.warning(
            "expired undecided plans %s; cancelled plans whose approval run ended "
            "without a decision %s",
            expired,
            cancelled,
        )
    replans = {}
    for policy, plan_id in policies_to_replan(done).items():
        replans[policy] = request_replan(policy, f"plan {plan_id}'s step expired")
        logger.warning(
            "a step of plan %s (%s) expired unapplied: its pool is not what the plan asked "
            "for; re-plan requested now rather than at the next cycle (%s)",
            plan_id,
            policy,
            replans[policy],
        )
    # a permanent fault, or an approval that did not hold at the write (the plan failed)
    failed = [d for d in done if d["outcome"] == "failed" or d["plan_failed"]]
    if failed:
        raise RuntimeError(
            f"{len(failed)} step(s) failed: "
            + "; ".join(f"plan {d['plan_id']} step {d['step_id']}: {d['reason']}" for d in failed)
        )
    return {
        "steps": done,
        "expired_plans": expired,
        "cancelled_plans": cancelled,
        "replan_runs": replans,
    }
