"""``capplan approvals``: approver keys and the approval codes made with them.

An approver's key stays with the approver (``$CAPPLAN_APPROVER_KEY`` on their machine) and
with the verifier (a Prefect Secret block ``capplan-approver-<name>``, or an ``env:``
reference on the worker). ``code`` makes the code a person pastes into the approval form in the
Prefect UI; ``capplan plans approve|reject`` makes it by itself. See docs/security.md.
"""

from __future__ import annotations

import os
import re

import typer

from capplan_cli.output import console, fail
from capplan_cli.prefect_guard import require_server
from capplan_core.approval.auth import DEFAULT_KEY_REF, approval_code, new_approver_key
from capplan_core.policy import APPROVER_NAME

approvals_app = typer.Typer(help="Approver keys and approval codes.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(approvals_app, name="approvals")


@approvals_app.command("code")
def code(
    plan_id: int = typer.Argument(..., help="the plan you decide"),
    decision: str = typer.Option(..., "--decision", help="approve or reject"),
    max_workers: int | None = typer.Option(
        None, "--max-workers", min=1, help="the same cap you enter in the form"
    ),
    apply_hours: float | None = typer.Option(None, "--apply-hours", min=0.01),
    key_env: str = typer.Option(
        "CAPPLAN_APPROVER_KEY", "--key-env", help="environment variable holding your approver key"
    ),
) -> None:
    """Print the approval code for one decision on one plan (paste it into the form)."""
    if decision not in ("approve", "reject"):
        fail(f"--decision: must be approve or reject (got {decision!r})")
    key = os.environ.get(key_env)
    if not key:
        fail(f"--key-env: ${key_env} holds no approver key")
    typer.echo(
        approval_code(key, plan_id, decision, max_workers=max_workers, apply_hours=apply_hours)
    )


@approvals_app.command("add-key")
def add_key(
    name: str = typer.Argument(..., help="approver name, as listed in approval.approvers"),
    show: bool = typer.Option(True, "--show/--no-show", help="print the new key once"),
) -> None:
    """Make a new key for an approver and keep it in the Prefect Secret block
    ``capplan-approver-NAME`` (replacing an old one). Give the printed key to the approver."""
    if not re.fullmatch(APPROVER_NAME, name):
        fail(f"name: {name!r} must be lower-case letters, digits and '-' (at most 63)")
    require_server("capplan approvals add-key")  # a temporary server would lose the key
    from capplan_app.secrets import store_prefect_secret

    key = new_approver_key()
    block = DEFAULT_KEY_REF.format(name=name).removeprefix("prefect-secret:")
    store_prefect_secret(block, key)
    console.print(
        f"stored a new key for approver {name!r} in the Prefect Secret block {block!r}",
        highlight=False,
    )
    if show:
        typer.echo(key)
