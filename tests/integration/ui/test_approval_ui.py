"""What a person does in the Prefect UI, in a real browser (Debian's Chromium driven by
Playwright), against a real Prefect server with its API auth on and the plan store on
PostgreSQL: log in, open the paused ``approve-plan-<id>`` run (the plan's own run: the planning
run has long finished), read the plan in the pause description, submit the approval form with
a **signed decision** (issue 24: the policy takes signatures only, ``approval.proof:
signature``; the approver made a key pair with ``capplan approvals keygen``, an admin
registered the public key, and ``capplan approvals sign`` printed what is pasted into the
form; no approver secret exists on any server); an unauthorized submission is refused and the
run keeps waiting; an authorized one resumes it and its steps are applied when due (never
before), the write verifying the signature again.

An unauthenticated client cannot even reach the form: the server refuses it with 401.
Screenshots go to ``CAPPLAN_UI_SHOTS`` (default: the test's tmp dir); docs/images has one.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from capplan_app.bootstrap import DEMO_POLICIES
from capplan_core.planning.stored_plan import PlanStatus
from tests.integration.flows.helpers import recent_demo_metrics
from tests.integration.ui.auth_server import AuthPrefectServer
from tests.invariants import assert_applied_only_when_due

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AUTH = "capplan-admin:ui-test-9f3b2c"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# the planning run ends at once; the plan waits in its approve-plan run (a thread here)
_PLAN_RUN = """
import asyncio, sys
from flows.plan_queue import plan_queue
from tasks.approval_runs import join_local_approval_runs
asyncio.run(plan_queue(policy="emails", metrics_path=sys.argv[1], approval="policy",
                       approval_poll_s=1, requested_by="ops"))
sys.exit(1 if join_local_approval_runs(600) else 0)
"""


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthPrefectServer]:
    server = AuthPrefectServer(tmp_path_factory.mktemp("prefect-auth"), AUTH)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    out = Path(os.environ.get("CAPPLAN_UI_SHOTS") or tmp_path / "shots")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _as_admin(server: AuthPrefectServer):
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    return temporary_settings(
        updates={PREFECT_API_URL: server.api_url, PREFECT_API_AUTH_STRING: AUTH}
    )


def test_a_person_approves_in_the_prefect_ui_and_an_unauthorized_submission_is_refused(
    auth_server: AuthPrefectServer,
    pg_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    shots: Path,
) -> None:
    from playwright.sync_api import expect, sync_playwright

    from capplan_app.bootstrap import plan_store
    from capplan_app.settings import get_settings
    from capplan_cli.approvals import await_outcome, wait_for_paused_plan
    from capplan_core.policy import load_policies
    from tests.approvers import with_approvers
    from tests.conftest import fresh_pg_store_url

    monkeypatch.setenv("CAPPLAN_DATABASE_URL", fresh_pg_store_url(pg_url))
    monkeypatch.setenv("CAPPLAN_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    store = plan_store()
    # signatures only: no approver key in any Secret block or environment
    signed_only = [
        p.model_copy(update={"approval": p.approval.model_copy(update={"proof": "signature"})})
        for p in with_approvers(load_policies(DEMO_POLICIES))
    ]
    store.apply_policies(signed_only, actor="ops")
    key_file = tmp_path / "alice.key"  # alice's own machine
    public = _cli("approvals", "keygen", "--out", str(key_file)).splitlines()[-1]
    _cli("approvals", "register-key", "alice", public, "--by", "admin")

    def signed(plan_id: int) -> str:
        """What alice pastes into the form: `capplan approvals sign` on her machine."""
        return _cli(
            "approvals", "sign", str(plan_id), "--decision", "approve", "--by", "alice",
            "--key-file", str(key_file),
        ).splitlines()[-1]  # fmt: skip

    env = {
        **os.environ,
        "PREFECT_API_URL": auth_server.api_url,
        "PREFECT_API_AUTH_STRING": AUTH,
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    since = datetime.now(UTC)
    log = (tmp_path / "plan-run.log").open("w")
    run = subprocess.Popen(
        [sys.executable, "-c", _PLAN_RUN, recent_demo_metrics()],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        with _as_admin(auth_server):
            plan = wait_for_paused_plan(
                store, "emails", since=since, timeout_s=600, stop=lambda: run.poll() is not None
            )
        assert plan is not None and plan.flow_run_id, (tmp_path / "plan-run.log").read_text()
        token = signed(plan.id)

        # no credentials, or wrong ones: the server refuses to resume the run (401)
        resume = f"{auth_server.api_url}/flow_runs/{plan.flow_run_id}/resume"
        form = {
            "run_input": {
                "decision": "approve",
                "approver": "alice",
                "approval_code": token,
            }
        }
        assert httpx.post(resume, json=form, timeout=10).status_code == 401
        bad = "Basic " + base64.b64encode(b"capplan-admin:guess").decode()
        assert (
            httpx.post(resume, json=form, headers={"Authorization": bad}, timeout=10).status_code
            == 401
        )
        assert store.get_plan(plan.id).status == PlanStatus.PROPOSED

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(f"{auth_server.url}/login")
            page.fill("input[type=password]", AUTH)
            page.get_by_role("button", name="Login").click()
            page.wait_for_url(lambda u: "/login" not in u)
            run_page = f"{auth_server.url}/runs/flow-run/{plan.flow_run_id}"

            def open_form() -> None:
                page.goto(run_page)
                expect(page.get_by_text(f"approve-plan-{plan.id}").first).to_be_visible()
                expect(page.get_by_text("Paused").first).to_be_visible()
                page.get_by_role("button", name="Resume").first.click()
                expect(page.get_by_text(f"Plan {plan.id} for queue").first).to_be_visible()

            def submit(approver: str, approval_code: str) -> None:
                modal = page.locator(".p-modal")
                choice = modal.locator(".p-select-button__control").first
                choice.focus()
                choice.press("ArrowDown")  # the select opens its options from the keyboard
                page.get_by_role("option", name="approve", exact=True).click()
                boxes = modal.locator("textarea")
                boxes.nth(0).fill(approver)
                boxes.nth(1).fill(approval_code)
                boxes.nth(2).fill("from the browser test")
                modal.get_by_role("button", name="Submit").click()

            open_form()
            modal_text = page.locator(".p-modal").inner_text()
            assert "Workers:" in modal_text and "emails" in modal_text  # the plan summary
            page.screenshot(path=str(shots / "1-approval-form.png"))

            # an unauthorized person: not an approver, with alice's signed decision
            submit("mallory", token)
            outcome, reason = await_outcome(store, plan.id, refusals_before=0, timeout_s=120)
            assert outcome == "refused" and "not listed" in str(reason)
            with _as_admin(auth_server):
                again = wait_for_paused_plan(store, "emails", since=since, timeout_s=120)
            assert again is not None and again.id == plan.id
            assert store.get_plan(plan.id).status == PlanStatus.PROPOSED
            open_form()  # still waiting, and the form says why the last one was refused
            expect(page.get_by_text("Previous submission refused").first).to_be_visible()
            page.screenshot(path=str(shots / "2-refused-still-waiting.png"))

            submit("alice", token)  # the signed decision, pasted
            deadline = time.monotonic() + 300
            while run.poll() is None and time.monotonic() < deadline:
                time.sleep(1)
            assert run.returncode == 0, (tmp_path / "plan-run.log").read_text()[-3000:]
            page.goto(run_page)
            expect(page.get_by_text("Completed").first).to_be_visible()
            page.screenshot(path=str(shots / "3-approved-completed.png"))
            browser.close()
    finally:
        if run.poll() is None:
            run.kill()
        log.close()

    got = store.get_plan(plan.id)
    assert got.decided_by == "alice"
    # the decision kept its signature, and the write verified it (no unauthorized refusal)
    trail = store.audit_events(plan_id=plan.id)
    assert any((e.details or {}).get("authenticated") == "signature" for e in trail), trail
    assert store.audit_events(plan_id=plan.id, action="unauthorized") == []
    assert got.status in (PlanStatus.APPROVED, PlanStatus.APPLIED)
    assert_applied_only_when_due(store, plan.id)
    assert [e.actor for e in store.audit_events(plan_id=plan.id, action="decision_refused")] == [
        "mallory"
    ]
    get_settings.cache_clear()


def _cli(*args: str) -> str:
    from typer.testing import CliRunner

    from capplan_cli.main import app

    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == 0, res.output
    return res.stdout.strip()
