"""``capplan rbac render``: the Kubernetes Role whose resourceNames are the policies' targets."""

from __future__ import annotations

import json
from pathlib import Path

import typer
import yaml

from capplan_cli.output import console
from capplan_cli.runner import file_or_stored_policies
from capplan_core.execution.pool_templates import PLANNER_SERVICE_ACCOUNT, pool_job_template
from capplan_core.execution.rbac import render_rbac

#: the base job template both work pools derive from (docs/kubernetes.md)
BASE_JOB_TEMPLATE = (
    Path(__file__).resolve().parents[1] / "deployments" / "work-pool-base-job-template.json"
)

rbac_app = typer.Typer(help="Least-privilege RBAC from the policies.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(rbac_app, name="rbac")


@rbac_app.command("render")
def render(
    policy: Path | None = typer.Option(
        None, "--policy", help="policy YAML file; default: the stored policies"
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="write here (default stdout)"),
    service_account: str = typer.Option(
        "capplan", "--service-account", help="the scaling pool's ServiceAccount (may scale)"
    ),
    planner_service_account: str = typer.Option(
        PLANNER_SERVICE_ACCOUNT,
        "--planner-service-account",
        help="the planning pool's ServiceAccount (may only read)",
    ),
    namespace: str = typer.Option("capplan", "--namespace", help="the ServiceAccounts' namespace"),
) -> None:
    """Write the two work pools' ServiceAccounts, and per target namespace a Role +
    RoleBinding for each: the scaling pool's may read and scale exactly the policies'
    targets (resourceNames), the planning pool's may only read them."""
    policies = file_or_stored_policies(policy)
    text = (
        "# rendered by `capplan rbac render` from the policies' targets; do not edit\n"
        + yaml.safe_dump_all(
            render_rbac(
                policies,
                service_account=service_account,
                service_account_namespace=namespace,
                planner_service_account=planner_service_account,
            ),
            sort_keys=False,
        )
    )
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        console.print(f"wrote {out}")


@rbac_app.command("job-template")
def job_template(
    pool: str = typer.Option(..., "--pool", help="planning or scaling"),
    base: Path = typer.Option(BASE_JOB_TEMPLATE, "--base", help="the base job template"),
    service_account: str = typer.Option(
        "capplan", "--service-account", help="the scaling pool's ServiceAccount"
    ),
) -> None:
    """Print the base job template of one Kubernetes work pool: the planning pool's pins the
    read-only ServiceAccount and CAPPLAN_POOL_ROLE=planning, the scaling pool's the one that
    may scale (prefect work-pool create capplan-scaling --type kubernetes
    --base-job-template FILE)."""
    doc = json.loads(base.read_text())
    try:
        out = pool_job_template(doc, pool, scaler_service_account=service_account)  # type: ignore[arg-type]
    except ValueError as err:  # names the pools
        raise typer.BadParameter(str(err).removeprefix("pool: "), param_hint="--pool") from None
    typer.echo(json.dumps(out, indent=2))
