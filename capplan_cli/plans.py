"""``capplan plans``: list, show, approve and reject stored plans."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import typer

from capplan_app.bootstrap import plan_reader, plan_store
from capplan_cli.approvals import ApprovalError, await_outcome, resume_with_decision
from capplan_cli.output import console, fail, plans_table, print_json
from capplan_cli.prefect_guard import require_server
from capplan_core.approval.auth import approval_code
from capplan_core.planning.errors import StoreError
from capplan_core.planning.markdown import table
from capplan_core.planning.records import plan_summary

if TYPE_CHECKING:
    from capplan_core.planning.repository import PlanRepository

plans_app = typer.Typer(help="Stored capacity plans.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(plans_app, name="plans")


@plans_app.command("list")
def list_plans(
    queue: str | None = typer.Option(None, "--queue"),
    status: str | None = typer.Option(None, "--status"),
    limit: int = typer.Option(20, "--limit", min=1, max=1000),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The newest plans, newest first."""
    rows = [
        plan_summary(p) for p in plan_reader().list_plans(queue=queue, status=status, limit=limit)
    ]
    if as_json:
        print_json(rows)
    else:
        console.print(plans_table(rows, "capplan plans"))


@plans_app.command("show")
def show(
    plan_id: int = typer.Argument(..., help="plan id"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """One plan with its steps, simulation and the explanation of each step."""
    store = plan_reader()
    try:
        plan = store.get_plan(plan_id)
    except StoreError as err:
        fail(str(err))
    from capplan_core.planning.explain import stored_step_rows

    summary = plan_summary(plan)
    summary["explanation"] = stored_step_rows(plan)
    summary["audit"] = [
        {"at": e.at.isoformat(), "actor": e.actor, "action": e.action, "details": e.details}
        for e in store.audit_events(plan_id=plan_id)
    ]
    if as_json:
        print_json(summary)
        return
    console.print(plans_table([summary], f"plan {plan_id}"))
    from capplan_core.planning.markdown import plan_markdown

    console.print(plan_markdown(summary, plan.details))
    if summary["explanation"]:
        console.print("\nExplanation per step:\n" + table(summary["explanation"]))
    console.print(
        "\nAudit:\n"
        + table([{k: v for k, v in a.items() if k != "details"} for a in summary["audit"]])
    )


# exit code of a decision refused for a reason the approver can act on (stale plan, cap)
REFUSED_EXIT = 3


def _record_decision(
    plan_id: int,
    decision: str,
    approver: str,
    comment: str,
    max_workers: int | None,
    apply_hours: float | None,
    code: str | None,
    key_env: str,
    wait_s: float,
    key_file: str | None = None,
) -> None:
    if decision == "approve":
        try:
            from capplan_core.approval.service import why_refused

            refusal = why_refused(plan_store(), plan_id, max_workers)
        except StoreError as err:  # e.g. no such plan
            fail(str(err), code=1)
        if refusal is not None:
            fail(refusal, code=REFUSED_EXIT)
    # the paused run lives on the real server; a temporary one knows no such run
    require_server(f"capplan plans {decision}")
    store = plan_store()
    code = code or _proof(
        store, plan_id, decision, approver, max_workers, apply_hours, key_env, key_file
    )
    try:
        before = len(store.audit_events(plan_id=plan_id, action="decision_refused"))
        run_id = resume_with_decision(
            store,
            plan_id,
            decision=decision,
            approver=approver,
            code=code,
            comment=comment,
            max_workers=max_workers,
            apply_hours=apply_hours,
        )
    except (ApprovalError, StoreError) as err:
        fail(str(err), code=1)
    console.print(f"plan {plan_id}: sent '{decision}' by {approver} to flow run {run_id}")
    if wait_s <= 0:
        return
    outcome, reason = await_outcome(store, plan_id, refusals_before=before, timeout_s=wait_s)
    if outcome == "refused":
        fail(f"plan {plan_id}: the run refused the decision: {reason}", code=REFUSED_EXIT)
    if outcome == "pending":
        console.print(
            f"plan {plan_id}: the run has not taken the decision within "
            f"{wait_s:.0f} s; see `capplan plans show {plan_id}`"
        )
    else:
        console.print(f"plan {plan_id}: {store.get_plan(plan_id).status}")


def _proof(
    store: PlanRepository,
    plan_id: int,
    decision: str,
    approver: str,
    max_workers: int | None,
    apply_hours: float | None,
    key_env: str,
    key_file: str | None,
) -> str:
    """The decision's proof made here, as the plan's policy version asks for it: signed
    with the private key in ``key_file`` (default for ``proof: signature``), or the approval
    code made from ``$key_env`` (``proof: code``, unless ``--key-file`` is given)."""
    from capplan_cli.key_files import DEFAULT_KEY_FILE, read_private_key
    from capplan_core.approval.signature import SignatureError, signed_decision

    try:
        plan = store.get_plan(plan_id)
        proof = store.policy_for_plan(plan).approval.proof
    except StoreError as err:
        fail(str(err), code=1)
    if proof == "code" and key_file is None:
        return _code_from_key(key_env, plan_id, decision, max_workers, apply_hours)
    try:
        return signed_decision(
            read_private_key(key_file or DEFAULT_KEY_FILE),
            plan,
            store_id=store.store_id(),
            decision=decision,
            approver=approver,
            now=store.now(),
            max_workers=max_workers,
            apply_hours=apply_hours,
        )
    except SignatureError as err:
        fail(str(err))


def _code_from_key(
    key_env: str, plan_id: int, decision: str, max_workers: int | None, apply_hours: float | None
) -> str:
    """The approval code made with the key in ``$key_env`` (the key never leaves here)."""
    key = os.environ.get(key_env)
    if not key:
        fail(f"--code: no approval code given and ${key_env} (--key-env) holds no approver key")
    return approval_code(key, plan_id, decision, max_workers=max_workers, apply_hours=apply_hours)


KEY_ENV_HELP = (
    "environment variable holding your approver key, for a policy with approval.proof: code "
    "(the code is made from it)"
)
KEY_FILE_HELP = (
    "your private key (capplan approvals keygen): the decision is signed with it; the default "
    "for a policy that takes signed decisions is ~/.config/capplan/approver.key"
)
CODE_HELP = (
    "the decision's proof: a signed decision (capplan approvals sign) or an approval code "
    "(capplan approvals code); default: made here, from --key-file or --key-env"
)


@plans_app.command("approve")
def approve(
    plan_id: int = typer.Argument(...),
    approver: str = typer.Option(
        ..., "--by", help="your approver name (in the policy's approval.approvers; audited)"
    ),
    comment: str = typer.Option("", "--comment"),
    max_workers: int | None = typer.Option(
        None, "--max-workers", help="cap: at least the plan's current count, never 0"
    ),
    apply_hours: float | None = typer.Option(None, "--apply-hours", min=0.01),
    code: str | None = typer.Option(None, "--code", help=CODE_HELP),
    key_env: str = typer.Option("CAPPLAN_APPROVER_KEY", "--key-env", help=KEY_ENV_HELP),
    key_file: str | None = typer.Option(None, "--key-file", help=KEY_FILE_HELP),
    wait_s: float = typer.Option(
        60,
        "--wait",
        min=0,
        help="seconds to wait for the run to take or refuse the decision (0: do not wait)",
    ),
) -> None:
    """Approve a plan paused for approval (resumes its flow run with the form's input).

    Exit 3 when the decision is refused (stale plan, cap, not an approver, wrong code)."""
    _record_decision(
        plan_id,
        "approve",
        approver,
        comment,
        max_workers,
        apply_hours,
        code,
        key_env,
        wait_s,
        key_file,
    )


@plans_app.command("reject")
def reject(
    plan_id: int = typer.Argument(...),
    approver: str = typer.Option(
        ..., "--by", help="your approver name (in the policy's approval.approvers; audited)"
    ),
    comment: str = typer.Option("", "--comment"),
    code: str | None = typer.Option(None, "--code", help=CODE_HELP),
    key_env: str = typer.Option("CAPPLAN_APPROVER_KEY", "--key-env", help=KEY_ENV_HELP),
    key_file: str | None = typer.Option(None, "--key-file", help=KEY_FILE_HELP),
    wait_s: float = typer.Option(60, "--wait", min=0),
) -> None:
    """Reject a plan paused for approval: nothing is applied."""
    _record_decision(
        plan_id, "reject", approver, comment, None, None, code, key_env, wait_s, key_file
    )


@plans_app.command("apply-due")
def apply_due(
    as_json: bool = typer.Option(
        False, "--json", help="a list of {plan_id, step_id, outcome, reason}"
    ),
    lease_seconds: float = typer.Option(
        60.0,
        "--lease-seconds",
        min=1.0,
        max=3600.0,
        help="how long this run holds a step and its target (on the store's clock; renewed "
        "before every write); a killed run's step is taken over (and read back) after this",
    ),
) -> None:
    """Apply every due step of approved plans, in order, in this process (no Prefect server
    needed; deployed, the apply-due sweeper does the same every minute).

    "Due" is on the store's clock, and a step is never applied before its time. Safe to run
    concurrently with itself and with apply-step runs: each step is claimed with a lease and
    each target has one writer at a time. Each plan's approval is checked again before its
    write. Exit code 1 when a step failed or an approval did not hold."""
    import math
    import os
    import uuid

    from capplan_app.bootstrap import (
        authority_check,
        is_dry_run,
        refuse_writes_in_planning_pool,
        step_scaler,
    )
    from capplan_app.settings import get_settings
    from capplan_core.execution.due import DueRun, self_kill_hook
    from capplan_core.execution.due import apply_due as run_due

    if not math.isfinite(lease_seconds):
        fail(f"--lease-seconds: {lease_seconds!r} must be a finite number of seconds")
    try:  # a planning-pool process only reads targets (docs/security.md)
        refuse_writes_in_planning_pool("apply-due")
    except RuntimeError as err:
        fail(str(err))
    dry = is_dry_run()
    run = DueRun(
        run_id=f"cli-{os.getpid()}-{uuid.uuid4().hex[:8]}",
        actor="capplan",
        lease_s=lease_seconds,
        wait_ready_s=0.0 if dry else 300.0,
        cooldown_scope_plan=dry,
        # fault injection for the reliability suite (docs/reliability.md)
        hook=self_kill_hook(get_settings().fault_kill_at),
        authority=authority_check,  # each approval re-checked before its write
    )
    done = run_due(plan_store(), step_scaler, run=run)
    if as_json:
        print_json([{k: d[k] for k in ("plan_id", "step_id", "outcome", "reason")} for d in done])
    else:
        for d in done:
            console.print(
                f"plan {d['plan_id']} step {d['step_id']}: {d['outcome']} — {d['reason']}"
            )
        if not done:
            console.print("no steps due")
    if any(d["outcome"] == "failed" or d["plan_failed"] for d in done):
        raise typer.Exit(1)  # a step failed, or a plan's approval did not hold at the write
