"""``capplan policies``: apply a policy file as new versions, and read versions back."""

from __future__ import annotations

import getpass
from pathlib import Path

import typer

from capplan_app.bootstrap import plan_reader, plan_store
from capplan_cli.key_files import DEFAULT_KEY_FILE
from capplan_cli.output import console, err_console, fail, print_json
from capplan_core.planning.errors import StoreError
from capplan_core.planning.markdown import table
from capplan_core.planning.policy_versions import (
    PolicyVersion,
    check_policy_set,
    policy_diff,
    policy_digest,
    policy_yaml,
)
from capplan_core.planning.strategy_choice import EVIDENCE_DAYS
from capplan_core.policy import PolicyError, load_policies

policies_app = typer.Typer(
    help="Versioned scaling policies in the plan store.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(policies_app, name="policies")


def _actor(given: str | None) -> str:
    """Who applies: --by, else $CAPPLAN_ACTOR, else the login name (audited)."""
    from capplan_app.settings import get_settings

    return given or get_settings().actor or getpass.getuser()


def _row(v: PolicyVersion) -> dict[str, object]:
    p = v.policy
    return {
        "name": v.name,
        "version": v.version,
        "queue": p.queue,
        "mode": p.mode.value,
        "enabled": p.enabled,
        "target": f"{p.target.kind}:{p.target.namespace}/{p.target.name}",
        "approvers": ",".join(p.approval.approvers),
        "applied_by": v.applied_by,
        "applied_at": v.applied_at.isoformat(timespec="seconds"),
        "comment": v.comment,
    }


@policies_app.command("apply")
def apply(
    path: Path = typer.Argument(..., help="policy YAML file"),
    by: str | None = typer.Option(
        None, "--by", help="who applies (default $CAPPLAN_ACTOR or your login name; audited)"
    ),
    comment: str = typer.Option("", "--comment", max=2000),
    dry_run: bool = typer.Option(False, "--dry-run", help="validate and show the diff only"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Validate FILE, show what changes, and store each changed policy as a new version.

    Policies not in FILE are left as they are (disable one with `enabled: false`). A changed
    policy supersedes its proposed and live plans. Exit 2 on an invalid file (nothing stored).
    """
    try:
        policies = load_policies(path)
    except PolicyError as err:
        fail(str(err))
    store = plan_store()
    stored = {v.name: v for v in store.list_policies()}
    try:
        check_policy_set((v.policy for v in stored.values()), policies)
    except PolicyError as err:
        fail(str(err))
    diffs = {
        p.name: policy_diff(
            stored[p.name].policy if p.name in stored else None,
            p,
            old_label=f"{p.name} v{stored[p.name].version}"
            if p.name in stored
            else f"{p.name} (new)",
            new_label=str(path),
        )
        for p in policies
        if p.name not in stored or policy_digest(stored[p.name].policy) != policy_digest(p)
    }
    if not as_json:
        for name, text in diffs.items():
            console.print(f"[bold]{name}[/]", highlight=False)
            console.print(text, highlight=False, markup=False)
        if not diffs:
            console.print("no change: every policy in the file is stored as it is")
    if dry_run:
        if as_json:
            print_json({"dry_run": True, "changes": sorted(diffs), "diff": diffs})
        return
    try:
        changes = store.apply_policies(policies, actor=_actor(by), comment=comment)
    except PolicyError as err:  # a concurrent apply got there first
        fail(str(err))
    out = [
        {
            "name": c.name,
            "version": c.version,
            "previous": c.previous,
            "changed": c.changed,
            "superseded_plans": list(c.superseded_plans),
            # four eyes: stored, not in effect until a current approver signs it
            **({"pending": list(c.pending)} if c.pending else {}),
        }
        for c in changes
    ]
    if as_json:
        print_json(out)
        return
    for c in changes:
        if c.pending:
            console.print(
                f"{c.name} v{c.version} is stored but NOT in effect: it widens authority "
                f"({'; '.join(c.pending)}). "
                + ("A current approver" if c.previous else "An approver whose key is in force")
                + " (not you) makes it current: "
                f"capplan policies approve {c.name} {c.version} --by NAME",
                highlight=False,
            )
    console.print(
        table(
            [
                {
                    "name": c.name,
                    "version": c.version,
                    "previous": c.previous,
                    "changed": c.changed,
                    "superseded_plans": ",".join(map(str, c.superseded_plans)),
                }
                for c in changes
            ]
        )
    )


@policies_app.command("list")
def list_policies(as_json: bool = typer.Option(False, "--json")) -> None:
    """Every stored policy at its current version."""
    rows = [_row(v) for v in plan_reader().list_policies()]
    if as_json:
        print_json(rows)
    else:
        console.print(table(rows) if rows else "no policy is stored (capplan policies apply FILE)")


def _version(name: str, version: int | None) -> PolicyVersion:
    store = plan_store()
    try:
        return (
            store.current_policy(name) if version is None else store.policy_version(name, version)
        )
    except StoreError as err:
        fail(str(err), code=1)


@policies_app.command("show")
def show(
    name: str = typer.Argument(...),
    version: int | None = typer.Option(None, "--version", min=1),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """One policy (current version, or --version N) as YAML."""
    v = _version(name, version)
    if as_json:
        print_json({**_row(v), "sha256": v.sha256, "spec": v.policy.model_dump(mode="json")})
        return
    console.print(
        f"# {v.name} version {v.version}, applied by {v.applied_by} at "
        f"{v.applied_at.isoformat(timespec='seconds')}",
        highlight=False,
        markup=False,
    )
    console.print(policy_yaml(v.policy), highlight=False, markup=False)


@policies_app.command("history")
def history(name: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """Every version of a policy, oldest first, with who applied it and when."""
    try:
        versions = plan_store().policy_history(name)
    except StoreError as err:
        fail(str(err), code=1)
    rows = [
        {
            "version": v.version,
            "applied_by": v.applied_by,
            "applied_at": v.applied_at.isoformat(timespec="seconds"),
            "sha256": v.sha256[:12],
            "comment": v.comment,
        }
        for v in versions
    ]
    if as_json:
        print_json(rows)
    else:
        console.print(table(rows))


@policies_app.command("diff")
def diff(
    name: str = typer.Argument(...),
    old: int | None = typer.Option(None, "--from", min=1, help="version (default: previous)"),
    new: int | None = typer.Option(None, "--to", min=1, help="version (default: current)"),
    file: Path | None = typer.Option(
        None,
        "--file",
        help="compare the current version with this file's policy of that name instead",
    ),
) -> None:
    """What changed between two versions (or between the current version and a file)."""
    current = _version(name, new)
    if file is not None:
        try:
            in_file = {p.name: p for p in load_policies(file)}
        except PolicyError as err:
            fail(str(err))
        if name not in in_file:
            fail(f"--file: {str(file)!r} has no policy named {name!r}")
        text = policy_diff(
            current.policy,
            in_file[name],
            old_label=f"{name} v{current.version}",
            new_label=str(file),
        )
    else:
        base = _version(name, old if old is not None else max(1, current.version - 1))
        text = policy_diff(
            base.policy,
            current.policy,
            old_label=f"{name} v{base.version}",
            new_label=f"{name} v{current.version}",
        )
    console.print(text or "no difference", highlight=False, markup=False)


@policies_app.command("approve")
def approve_version(
    name: str = typer.Argument(..., help="the policy"),
    version: int = typer.Argument(
        ..., min=1, help="its pending version (or its current one, to sign it in place)"
    ),
    approver: str = typer.Option(..., "--by", help="your approver name (of the current version)"),
    key_file: str = typer.Option(DEFAULT_KEY_FILE, "--key-file", help="your private key"),
    valid_seconds: float = typer.Option(600, "--valid-seconds"),
) -> None:
    """Sign a pending policy version (one that widens authority) with your key, so that it
    takes effect: four eyes, the person who applied it cannot (docs/security.md). With trust
    anchors set, a new policy that acts waits for this too, and a current version applied
    before the anchors were set is signed in place."""
    from capplan_app.bootstrap import plan_store
    from capplan_cli.key_files import read_private_key
    from capplan_core.approval.policy_signing import sign_version, statement_for_version
    from capplan_core.approval.signature import SignatureError
    from capplan_core.planning.errors import StoreError

    private = read_private_key(key_file)
    store = plan_store()
    try:
        target = store.policy_version(name, version)
        statement = statement_for_version(
            target, store_id=store.store_id(), approver=approver, now=store.now(),
            valid_s=valid_seconds,
        )  # fmt: skip
        change = store.approve_policy_version(
            name, version, sign_version(private, statement), actor=approver
        )
    except SignatureError as err:
        fail(str(err))
    except (StoreError, PolicyError) as err:
        fail(str(err), code=1)
    was = (
        "a new policy"
        if change.previous is None
        else "signed in place"
        if change.previous == change.version
        else f"was v{change.previous}"
    )
    console.print(
        f"{name} v{change.version} is now in effect ({was}); superseded plans: "
        f"{', '.join(map(str, change.superseded_plans)) or 'none'}",
        highlight=False,
    )


@policies_app.command("strategy")
def strategy(
    choose: bool = typer.Option(
        False,
        "--choose",
        help="first backtest each auto policy's last week and store its choice (the "
        "choose-strategy flow, run here: only what came since the queue's last choice; a "
        "whole week, minutes per queue, for a new or changed policy)",
    ),
    names: str | None = typer.Option(None, "--policies", help="comma-separated policy names"),
    evidence_days: float = typer.Option(EVIDENCE_DAYS, "--evidence-days", min=0.01, max=14),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The strategy each stored policy's next plan carries out, and why (scaling.strategy
    auto: the newest choice of its own last week; docs/backtest.md). Exit 1 when --choose
    left a queue without a new choice (named on stderr)."""
    from datetime import UTC, datetime

    from capplan_app.settings import get_settings
    from capplan_core.planning.strategy_choice import stored_strategy

    wanted = None if names is None else [n.strip() for n in names.split(",") if n.strip()]
    if wanted == []:
        fail(f"--policies: no policy name in {names!r}")
    store = plan_store()
    stored = {v.name: v for v in store.list_policies()}
    unknown = sorted(set(wanted or []) - set(stored))
    if unknown:
        fail(f"--policies: no stored policy named {', '.join(unknown)}")
    failed = False
    if choose:
        from flows.choose_strategy import choose_strategy

        state = choose_strategy(policies=wanted, evidence_days=evidence_days, return_state=True)
        if state.is_failed():
            err_console.print(f"[yellow]choose-strategy: {state.message}[/yellow]")
            failed = True
    now, scaler = datetime.now(UTC), get_settings().scaler
    rows = []
    for name, v in stored.items():
        if wanted is not None and name not in wanted:
            continue
        chosen, why = stored_strategy(store, v.policy, v.version, now, scaler)
        rows.append(
            {
                "name": name,
                "version": v.version,
                "stated": v.policy.scaling.strategy,
                "carries_out": chosen,
                "why": why,
            }
        )
    if as_json:
        print_json(rows)
    else:
        console.print(table(rows) if rows else "no policy is stored (capplan policies apply FILE)")
    if failed:  # shown as they stand; a queue got no new choice
        raise typer.Exit(1)
