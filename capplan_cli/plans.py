"""``capplan plans``: list, show, approve and reject stored plans."""

from __future__ import annotations

import typer

from capplan_app.bootstrap import plan_store
from capplan_cli.approvals import ApprovalError, resume_with_decision
from capplan_cli.output import console, fail, plans_table, print_json
from capplan_core.planning.explain import stored_step_rows
from capplan_core.planning.markdown import table
from capplan_core.planning.records import plan_summary
from capplan_core.store.errors import StoreError

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
    rows = [plan_summary(p)
            for p in plan_store().list_plans(queue=queue, status=status, limit=limit)]
    if as_json:
        print_json(rows)
    else:
        console.print(plans_table(rows, "capplan plans"))


@plans_app.command("show")
def show(plan_id: int = typer.Argument(..., help="plan id"),
         as_json: bool = typer.Option(False, "--json")) -> None:
    """One plan with its steps, simulation and the explanation of each step."""
    store = plan_store()
    try:
        plan = store.get_plan(plan_id)
    except StoreError as err:
        fail(str(err))
    summary = plan_summary(plan)
    summary["explanation"] = stored_step_rows(plan)
    summary["audit"] = [{"at": e.at.isoformat(), "actor": e.actor, "action": e.action,
                         "details": e.details} for e in store.audit_events(plan_id=plan_id)]
    if as_json:
        print_json(summary)
        return
    console.print(plans_table([summary], f"plan {plan_id}"))
    from capplan_core.planning.markdown import plan_markdown

    console.print(plan_markdown(summary, plan.details))
    if summary["explanation"]:
        console.print("\nExplanation per step:\n" + table(summary["explanation"]))
    console.print("\nAudit:\n" + table([{k: v for k, v in a.items() if k != "details"}
                                        for a in summary["audit"]]))


def _record_decision(plan_id: int, decision: str, approver: str, comment: str,
            max_workers: int | None, apply_hours: float | None) -> None:
    try:
        run_id = resume_with_decision(plan_store(), plan_id, decision=decision, approver=approver,
                                      comment=comment, max_workers=max_workers,
                                      apply_hours=apply_hours)
    except (ApprovalError, StoreError) as err:
        fail(str(err), code=1)
    console.print(f"plan {plan_id}: sent '{decision}' by {approver} to flow run {run_id}")


@plans_app.command("approve")
def approve(
    plan_id: int = typer.Argument(...),
    approver: str = typer.Option(..., "--by", help="your name (audited)"),
    comment: str = typer.Option("", "--comment"),
    max_workers: int | None = typer.Option(None, "--max-workers", min=0),
    apply_hours: float | None = typer.Option(None, "--apply-hours", min=0.01),
) -> None:
    """Approve a plan paused for approval (resumes its flow run with the form's input)."""
    _record_decision(plan_id, "approve", approver, comment, max_workers, apply_hours)


@plans_app.command("reject")
def reject(
    plan_id: int = typer.Argument(...),
    approver: str = typer.Option(..., "--by", help="your name (audited)"),
    comment: str = typer.Option("", "--comment"),
) -> None:
    """Reject a plan paused for approval: nothing is applied."""
    _record_decision(plan_id, "reject", approver, comment, None, None)


@plans_app.command("apply-due")
def apply_due(as_json: bool = typer.Option(False, "--json")) -> None:
    """Apply every pending step of approved plans whose time has come (each as an apply-step
    flow run). For setups without the apply-step deployment; with it, Prefect does this."""
    from datetime import UTC, datetime

    from capplan_core.execution.executor import due_steps
    from capplan_core.planning.stored_plan import PlanStatus
    from flows.apply_step import apply_step_flow

    approved = plan_store().list_plans(status=PlanStatus.APPROVED, limit=1000)
    done = [apply_step_flow(plan_id=plan_id, step_id=step_id)
            for plan_id, step_id in due_steps(approved, datetime.now(UTC))]
    if as_json:
        print_json(done)
    else:
        for d in done:
            console.print(f"plan {d['plan_id']} step {d['step_id']}: {d['outcome']} — "
                          f"{d['reason']}")
        if not done:
            console.print("no steps due")
