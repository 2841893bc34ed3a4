"""``capplan demo``: a full planning cycle on the bundled data, finishing on its own."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import typer

from capplan_app.bootstrap import DEMO_METRICS, DEMO_POLICIES, plan_store
from capplan_app.secrets import store_prefect_secret
from capplan_cli.approvals import resume_with_decision, wait_for_paused_plan
from capplan_cli.output import console, plans_table, print_json
from capplan_cli.runner import check_inputs, public, run_capacity_plan
from capplan_core.planning.approver_auth import approval_code, new_approver_key
from capplan_core.policy import Mode, load_policies

DEMO_APPROVER = "demo-user"  # listed in data/demo/policies.yaml approval.approvers
DEMO_KEY_BLOCK = f"capplan-approver-{DEMO_APPROVER}"
DEMO_OPERATOR = "capplan-demo"  # applies the demo policies and requests the cycle


def _ui_hint() -> str:
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

    if PREFECT_API_URL.value():
        return f"Prefect UI: {PREFECT_UI_URL.value()}/runs (flow 'capacity-plan')"
    return ("This demo ran on a temporary Prefect server that stops with it. To browse the runs, "
            "artifacts and the approval form in the Prefect UI: `prefect server start`, then "
            "`PREFECT_API_URL=http://127.0.0.1:4200/api capplan demo` and open "
            "http://127.0.0.1:4200/runs")


def start_worker(target: Callable[[], None]) -> threading.Thread:
    """Start ``target`` in a daemon thread, after importing what both threads use.

    The flow (and Prefect with it) and the Prefect client the waiting side uses are imported
    here, in the calling thread, first: two threads importing Prefect's modules for the first
    time at once deadlock on Python's per-module import locks, and Prefect reports it as
    "Failed to initialize plugins: deadlock detected by _ModuleLock(...)".
    """
    import prefect.client.orchestration  # noqa: F401 - see docstring
    import prefect.flow_runs  # noqa: F401

    import flows.capacity_plan  # noqa: F401

    worker = threading.Thread(target=target, name="capacity-plan", daemon=True)
    worker.start()
    return worker


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        as_json: bool = typer.Option(False, "--json"),
        live: bool = typer.Option(
            False, "--live", help="scale real rq workers under supervisord on the local Redis "
            "(CAPPLAN_REDIS_URL, default redis://127.0.0.1:6379/9), a few minutes"),
    ) -> None:
        """Plan the bundled demo queues: pause for the manual queue, approve it as a demo user.

        With ``--live``: the closed loop on real workers, printed as it happens."""
        if live:
            from capplan_cli.demo_live import run_live_demo

            run_live_demo(as_json=as_json)
            return
        from capplan_app.demo_store import demo_settings

        # the demo's own store and the dry-run scaler, never the user's (issue 21)
        with demo_settings("capplan", SCALER="dry-run") as url:
            _replay_demo(as_json, url)


def _replay_demo(as_json: bool, store_url: str) -> None:
    check_inputs(DEMO_METRICS, DEMO_POLICIES, None)
    policies = load_policies(DEMO_POLICIES)
    manual = [p for p in policies if p.mode == Mode.MANUAL]
    store = plan_store()
    # the demo is its own operator: it applies the bundled policies (a new version only
    # when they changed) and gives its approver a fresh key in a Prefect Secret block
    store.apply_policies(policies, actor=DEMO_OPERATOR, comment="capplan demo")
    demo_key = new_approver_key()
    store_prefect_secret(DEMO_KEY_BLOCK, demo_key)
    started = datetime.now(UTC)
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["results"] = run_capacity_plan(
                DEMO_METRICS, None, names=[p.name for p in policies], as_of=None,
                approval="policy", approval_poll_s=2, requested_by=DEMO_OPERATOR)
        except BaseException as err:  # noqa: BLE001 - reported below
            box["error"] = err

    console.print("[bold]capplan demo[/]: collect → clean → forecast → plan → simulate → "
                  "decide → approve → execute, on data/demo (dry-run scaler); the demo's own "
                  f"store: {store_url} (your default store is untouched)", highlight=False)
    worker = start_worker(run)
    for policy in manual:
        plan = wait_for_paused_plan(store, policy.queue, since=started, timeout_s=900,
                                    stop=lambda: not worker.is_alive())
        if plan is None:
            continue  # skipped (e.g. by data quality) or already decided
        console.print(f"\n[yellow]⏸ plan {plan.id} for '{policy.queue}' is paused for "
                      f"approval[/] ({plan.current_workers} → {plan.target_workers} workers, "
                      f"confidence {plan.confidence:.2f}); flow run {plan.flow_run_id}")
        resume_with_decision(store, plan.id, decision="approve", approver=DEMO_APPROVER,
                             code=approval_code(demo_key, plan.id, "approve"),
                             comment="approved by `capplan demo`")
        console.print(f"[green]✔ approved as '{DEMO_APPROVER}'[/] through the Prefect API "
                      "(what a person does with the form in the Prefect UI)")
    worker.join()
    if "error" in box:
        raise box["error"]
    results = [public(r) for r in box["results"]]
    if as_json:
        print_json(results)
    else:
        console.print(plans_table(results, "capplan demo — plans"))
        console.print(f"Details: `CAPPLAN_DATABASE_URL={store_url} capplan plans show ID`. "
                      + _ui_hint(), highlight=False)
