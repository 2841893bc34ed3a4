"""``capplan rbac render``: the Kubernetes Role whose resourceNames are the policies' targets."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml

from capplan_cli.output import console
from capplan_cli.runner import file_or_stored_policies
from capplan_core.execution.rbac import render_rbac

rbac_app = typer.Typer(help="Least-privilege RBAC from the policies.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(rbac_app, name="rbac")


@rbac_app.command("render")
def render(
    policy: Path | None = typer.Option(
        None, "--policy", help="policy YAML file; default: the stored policies"
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="write here (default stdout)"),
    service_account: str = typer.Option("capplan", "--service-account"),
    namespace: str = typer.Option("capplan", "--namespace", help="the ServiceAccount's namespace"),
) -> None:
    """Write a ServiceAccount, and per target namespace a Role + RoleBinding that may read
    and scale exactly the policies' targets (resourceNames), nothing else."""
    policies = file_or_stored_policies(policy)
    text = (
        "# rendered by `capplan rbac render` from the policies' targets; do not edit\n"
        + yaml.safe_dump_all(
            render_rbac(
                policies, service_account=service_account, service_account_namespace=namespace
            ),
            sort_keys=False,
        )
    )
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        console.print(f"wrote {out}")
