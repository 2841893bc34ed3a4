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

from capplan_cli.key_files import DEFAULT_KEY_FILE, read_private_key
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


# -- signed decisions (Ed25519): the private key stays on the approver's machine --------------


@approvals_app.command("keygen")
def keygen(
    out: str = typer.Option(
        DEFAULT_KEY_FILE, "--out", help="where to write your private key (mode 0600)"
    ),
    force: bool = typer.Option(False, "--force", help="replace an existing key file"),
) -> None:
    """Make your Ed25519 key pair: the private key goes to --out (never to a server), the
    public key is printed; give it to an admin for `capplan approvals register-key`."""
    from pathlib import Path

    from capplan_core.approval.signature import new_keypair, printable_public_key

    path = Path(out).expanduser()
    if path.exists() and not force:
        fail(f"--out: {path} exists (a key is not overwritten without --force)")
    private, public = new_keypair()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(private + "\n")
    os.chmod(path, 0o600)
    console.print(f"private key written to {path} (keep it there)", highlight=False)
    typer.echo(printable_public_key(public))


@approvals_app.command("register-key")
def register_key(
    name: str = typer.Argument(..., help="approver name, as listed in approval.approvers"),
    public_key: str = typer.Argument(..., help="the public key `capplan approvals keygen` printed"),
    actor: str | None = typer.Option(None, "--by", help="who registers it (audited)"),
    endorsement: str | None = typer.Option(
        None,
        "--endorsement",
        help="what another approver's `capplan approvals endorse-key` printed (needed for "
        "every key but an anchor or the store's first)",
    ),
) -> None:
    """Store an approver's public key in the plan store (versioned, audited). It must be a
    trust anchor, the store's first key, or endorsed by another approver (four eyes)."""
    if not re.fullmatch(APPROVER_NAME, name):
        fail(f"name: {name!r} must be lower-case letters, digits and '-' (at most 63)")
    from capplan_app.bootstrap import plan_store
    from capplan_cli.policies import _actor
    from capplan_core.approval.signature import SignatureError
    from capplan_core.planning.errors import StoreError

    by = _actor(actor)
    try:
        version = plan_store().add_approver_public_key(
            name, public_key, actor=by, endorsement=endorsement
        )
    except SignatureError as err:
        fail(f"public_key: {err}")
    except StoreError as err:
        fail(f"refused (audited): {err}", code=1)
    console.print(f"approver {name!r}: public key version {version} stored", highlight=False)


@approvals_app.command("endorse-key")
def endorse_key(
    name: str = typer.Argument(..., help="the approver whose new key you vouch for"),
    public_key: str = typer.Argument(..., help="their public key (from their keygen)"),
    approver: str = typer.Option(..., "--by", help="your approver name (not theirs)"),
    key_file: str = typer.Option(DEFAULT_KEY_FILE, "--key-file", help="your private key"),
    valid_seconds: float = typer.Option(
        3600, "--valid-seconds", help="how long the endorsement may be registered"
    ),
) -> None:
    """Print your endorsement of another approver's public key (four eyes on keys): they,
    or an admin, pass it to `capplan approvals register-key NAME KEY --endorsement ...`. It
    binds this store, the approver, the key and an expiry."""
    from capplan_app.bootstrap import plan_store
    from capplan_core.approval.key_trust import endorse, endorsement_statement
    from capplan_core.approval.signature import SignatureError, public_key_of

    private = read_private_key(key_file)
    store = plan_store()
    if public_key_of(private) not in store.approver_public_keys(approver):
        fail(f"--key-file: that key is not a key in force of {approver!r} in this store")
    try:
        st = endorsement_statement(
            store_id=store.store_id(),
            approver=name,
            public_key=public_key,
            endorser=approver,
            now=store.now(),
            valid_s=valid_seconds,
        )
    except SignatureError as err:
        fail(str(err))
    typer.echo(endorse(private, st))


@approvals_app.command("revoke-key")
def revoke_key(
    name: str = typer.Argument(...),
    version: int = typer.Argument(..., min=1),
    actor: str | None = typer.Option(None, "--by", help="who revokes it (audited)"),
) -> None:
    """Revoke one of an approver's public keys: decisions signed with it stop counting, at
    the approval and at every later write."""
    from capplan_app.bootstrap import plan_store
    from capplan_cli.policies import _actor
    from capplan_core.planning.errors import StoreError

    by = _actor(actor)
    try:
        plan_store().revoke_approver_public_key(name, version, actor=by)
    except StoreError as err:
        fail(str(err), code=1)
    console.print(f"approver {name!r}: key version {version} revoked", highlight=False)


@approvals_app.command("sign")
def sign_decision(
    plan_id: int = typer.Argument(..., help="the plan you decide"),
    decision: str = typer.Option(..., "--decision", help="approve or reject"),
    approver: str = typer.Option(..., "--by", help="your approver name"),
    max_workers: int | None = typer.Option(
        None, "--max-workers", min=1, help="the same cap you enter in the form"
    ),
    apply_hours: float | None = typer.Option(None, "--apply-hours", min=0.01),
    key_file: str = typer.Option(DEFAULT_KEY_FILE, "--key-file", help="your private key"),
    valid_seconds: float = typer.Option(
        3600, "--valid-seconds", help="how long the signed decision may be submitted"
    ),
) -> None:
    """Print your signed decision on a plan as it stands now (paste it into the form's
    approval_code, or pass it to `capplan plans approve --code`). It binds this store, the
    plan's content and policy version, the decision, the cap, the window and an expiry."""

    from capplan_app.bootstrap import plan_store
    from capplan_core.approval.signature import SignatureError, signed_decision
    from capplan_core.planning.errors import StoreError

    private = read_private_key(key_file)
    store = plan_store()
    try:
        typer.echo(
            signed_decision(
                private,
                store.get_plan(plan_id),
                store_id=store.store_id(),
                decision=decision,
                approver=approver,
                now=store.now(),
                valid_s=valid_seconds,
                max_workers=max_workers,
                apply_hours=apply_hours,
            )
        )
    except SignatureError as err:
        fail(str(err))
    except StoreError as err:
        fail(str(err), code=1)
