"""``capplan demo``: a full planning cycle on the bundled data, finishing on its own."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import typer

from capplan_app.bootstrap import DEMO_METRICS, DEMO_POLICIES, plan_store
from capplan_cli.output import console, fail, plans_table, print_json
from capplan_cli.runner import check_inputs, public, run_capacity_plan

DEMO_APPROVER = "demo-user"  # listed in data/demo/policies.yaml approval.approvers
DEMO_OPERATOR = "capplan-demo"  # applies the demo policies and requests the cycle


def _ui_hint() -> str:
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

    if PREFECT_API_URL.value():
        return f"Prefect UI: {PREFECT_UI_URL.value()}/runs (flow 'capacity-plan')"
    return (
        "This demo ran on a temporary Prefect server that stops with it. To browse the runs, "
        "artifacts and the approval form in the Prefect UI: `prefect server start`, then "
        "`PREFECT_API_URL=http://127.0.0.1:4200/api capplan demo` and open "
        "http://127.0.0.1:4200/runs"
    )


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        as_json: bool = typer.Option(False, "--json"),
        live: bool = typer.Option(
            False,
            "--live",
            help="scale real rq workers under supervisord on the local Redis "
            "(CAPPLAN_REDIS_URL, default redis://127.0.0.1:6379/9), a few minutes",
        ),
        shared: bool = typer.Option(
            False,
            "--shared",
            help="with --live: the workers serve two queues in order (rq worker Q Q_low), "
            "each with its own SLO (docs/shared-pools.md)",
        ),
    ) -> None:
        """Plan the bundled demo queues: pause for the manual queue, approve it as a demo user.

        With ``--live``: the closed loop on real workers, printed as it happens."""
        if shared and not live:
            fail("--shared: only with --live (the replayed demo always plans its shared pool)")
        if live:
            from capplan_cli.demo_live import run_live_demo

            run_live_demo(as_json=as_json, shared=shared)
            return
        from capplan_app.demo_store import demo_settings

        # the demo's own store and the dry-run scaler, never the user's (issue 21)
        with demo_settings("capplan", SCALER="dry-run") as url:
            _replay_demo(as_json, url)


def _replay_demo(as_json: bool, store_url: str) -> None:
    from capplan_app.demo_store import demo_store_path
    from capplan_app.local_approver import local_approver_key
    from capplan_cli.approvals import resume_with_decision, wait_for_paused_plan
    from capplan_core.approval.signature import signed_decision
    from capplan_core.policy import Mode, load_policies
    from tasks.approval_runs import join_local_approval_runs
    from tasks.summary import plan_view

    check_inputs(DEMO_METRICS, DEMO_POLICIES, None)
    policies = load_policies(DEMO_POLICIES)
    manual = {p.queue for p in policies if p.mode == Mode.MANUAL}
    store = plan_store()
    # the demo is its own operator: it applies the bundled policies (a new version only
    # when they changed); and its own approver, whose private key stays in a file beside
    # the demo's store (only the public key is registered), as a person's stays on theirs
    store.apply_policies(policies, actor=DEMO_OPERATOR, comment="capplan demo")
    demo_key = local_approver_key(
        store,
        DEMO_APPROVER,
        demo_store_path("capplan").with_name(f"capplan-{DEMO_APPROVER}.key"),
        actor=DEMO_OPERATOR,
    )
    metrics = _recent_demo_metrics()
    console.print(
        "[bold]capplan demo[/]: collect → clean → forecast → plan → simulate → "
        "decide → approve → execute, on data/demo replayed as if collected up to "
        "now (dry-run scaler); the demo's own "
        f"store: {store_url} (your default store is untouched)",
        highlight=False,
    )
    started = datetime.now(UTC)
    # the cycle plans at the wall clock and never waits for a person: a plan that needs one
    # waits in its own approve-plan run (here a thread of this process)
    results = run_capacity_plan(
        metrics,
        None,
        names=[p.name for p in policies],
        as_of=None,
        approval="policy",
        approval_poll_s=2,
        requested_by=DEMO_OPERATOR,
    )
    for r in results:
        if r.get("queue") not in manual or r.get("status") != "proposed":
            continue
        plan = wait_for_paused_plan(
            store,
            r["queue"],
            since=started,
            timeout_s=300,
            stop=partial(_not_running, int(r["id"])),
        )
        if plan is None:
            continue  # decided or ended another way
        console.print(
            f"\n[yellow]⏸ plan {plan.id} for '{plan.queue}' is paused for "
            f"approval[/] ({plan.current_workers} → {plan.target_workers} workers, "
            f"confidence {plan.confidence:.2f}) in its own flow run "
            f"{plan.flow_run_id}; the cycle itself has finished"
        )
        resume_with_decision(
            store,
            plan.id,
            decision="approve",
            approver=DEMO_APPROVER,
            code=signed_decision(
                demo_key,
                plan,
                store_id=store.store_id(),
                decision="approve",
                approver=DEMO_APPROVER,
                now=store.now(),
            ),
            comment="approved by `capplan demo`",
        )
        console.print(
            f"[green]✔ approved as '{DEMO_APPROVER}'[/], a decision signed with their "
            "key, through the Prefect API (what a person does with the form in the Prefect "
            "UI)"
        )
    join_local_approval_runs(timeout_s=300)
    final = [
        public(_final_view(store, r, plan_view)) if r.get("id") else public(r) for r in results
    ]
    if as_json:
        print_json(final)
    else:
        console.print(plans_table(final, "capplan demo — plans"))
        console.print(
            "Steps are applied when they are due, never before: a later step waits "
            "for its time (`capplan plans apply-due` applies what is due; deployed, "
            "the apply-due sweeper does it every minute)."
        )
        console.print(
            f"Details: `CAPPLAN_DATABASE_URL={store_url} capplan plans show ID`. " + _ui_hint(),
            highlight=False,
        )


def _not_running(plan_id: int) -> bool:
    from tasks.approval_runs import local_approval_running

    return not local_approval_running(plan_id)


def _final_view(store: Any, result: dict[str, Any], view: Any) -> dict[str, Any]:
    """The plan as stored now; the cycle's note only while its status is what it was."""
    plan = store.get_plan(result["id"])
    return view(plan, result.get("note") if plan.status == result.get("status") else None)


def _recent_demo_metrics() -> Path:
    """The bundled 14 days of metrics, shifted to end now (as if collect-metrics had been
    running), written next to the demo's store: a saved plan is made at the wall clock."""
    from capplan_app.demo_store import demo_store_path
    from capplan_core.metrics.file_source import read_metrics_file
    from capplan_core.metrics.transfer import shifted_to_end, write_metrics_frame

    out = demo_store_path("capplan").parent / "metrics-now.csv.gz"
    write_metrics_frame(shifted_to_end(read_metrics_file(DEMO_METRICS), datetime.now(UTC)), out)
    return out
