"""Who may approve, end to end on a real Prefect server: a decision is stored only when its
approver is listed for the plan's policy version, is not its requester (when the policy asks),
and proves it with an approval code made with their own key (kept in a Prefect Secret block).
Every refusal is audited with its reason, and the run keeps waiting for a valid decision."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from capplan_app.bootstrap import DEMO_POLICIES, plan_store
from capplan_cli.approvals import await_outcome, resume_with_decision, wait_for_paused_plan
from capplan_cli.main import app
from capplan_core.planning.stored_plan import PlanStatus
from tests.approvers import code, key_for
from tests.integration.flows.helpers import FlowThread

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _emails(tmp_path: Path, proof: str | None = "code") -> Path:
    doc = yaml.safe_load(DEMO_POLICIES.read_text())
    emails = next(p for p in doc["policies"] if p["name"] == "emails")
    emails["approval"] = {"timeout_seconds": 600, "require_distinct_requester": True}
    if proof is not None:  # None: the default (signed decisions)
        emails["approval"]["proof"] = proof
    out = tmp_path / "policies.yaml"
    out.write_text(yaml.safe_dump({"policies": [emails]}))
    return out


def _refused(store, plan_id: int, before: int) -> str:
    outcome, reason = await_outcome(store, plan_id, refusals_before=before, timeout_s=120)
    assert outcome == "refused", outcome
    return str(reason)


def test_only_a_listed_distinct_approver_with_their_own_code_decides(
    prefect_server, capplan_env, tmp_path
):
    # the run is requested by "gina" (a listed approver): she may not approve her own plan
    run = FlowThread(policy_path=str(_emails(tmp_path)), requested_by="gina")
    store = plan_store()

    def paused():
        plan = wait_for_paused_plan(
            store, "emails", since=run.started, timeout_s=600, stop=lambda: not run.alive()
        )
        assert plan is not None
        return plan

    plan = paused()
    attempts = [
        # (approver, code, what the refusal says)
        ("mallory", code("alice", plan.id), "is not listed for policy 'emails'"),
        ("alice", code("bob", plan.id), "does not match approver 'alice'"),
        ("alice", code("alice", plan.id, "reject"), "does not match approver 'alice'"),
        ("gina", code("gina", plan.id), "requested this plan"),
    ]
    for n, (approver, c, why) in enumerate(attempts):
        resume_with_decision(store, plan.id, decision="approve", approver=approver, code=c)
        assert why in _refused(store, plan.id, n)
        assert store.get_plan(plan.id).status == PlanStatus.PROPOSED  # nothing stored
        plan = paused()  # still waiting

    # the CLI is refused the same way, with exit code 3 and the reason
    res = CliRunner().invoke(
        app, ["plans", "approve", str(plan.id), "--by", "dave", "--code", code("erin", plan.id)]
    )
    assert res.exit_code == 3 and "does not match approver 'dave'" in " ".join(res.output.split())
    plan = paused()

    # alice's own code for this decision and these limits is taken
    cap = plan.current_workers + 1
    res = CliRunner().invoke(
        app,
        ["plans", "approve", str(plan.id), "--by", "alice", "--max-workers", str(cap)],
        env={"CAPPLAN_APPROVER_KEY": key_for("alice")},
    )
    assert res.exit_code == 0, res.output
    run.join()
    got = store.get_plan(plan.id)
    assert got.status in (PlanStatus.APPROVED, PlanStatus.APPLIED) and got.decided_by == "alice"
    refusals = store.audit_events(plan_id=plan.id, action="decision_refused")
    assert [e.actor for e in refusals] == ["mallory", "alice", "alice", "gina", "dave"]
    assert all(e.details["authenticated"] is False for e in refusals)
    approved = store.audit_events(plan_id=plan.id, action="approved")
    assert len(approved) == 1 and approved[0].details["authenticated"] == "approval-code"


def test_plans_approve_signs_with_the_key_file_under_the_default_proof(
    prefect_server, capplan_env, tmp_path
):
    # the default policy takes signed decisions: alice's private key stays in her file, the
    # store holds her public key; `plans approve --key-file` signs the decision it sends
    key = tmp_path / "alice.key"
    res = CliRunner().invoke(app, ["approvals", "keygen", "--out", str(key)])
    assert res.exit_code == 0, res.output
    public = res.output.strip().splitlines()[-1]
    res = CliRunner().invoke(app, ["approvals", "register-key", "alice", public, "--by", "ops"])
    assert res.exit_code == 0, res.output
    run = FlowThread(
        policy_path=str(_emails(tmp_path, proof=None)), proof=None, requested_by="gina"
    )
    store = plan_store()
    plan = wait_for_paused_plan(
        store, "emails", since=run.started, timeout_s=600, stop=lambda: not run.alive()
    )
    assert plan is not None
    # an approval code, even alice's own, is not a signature
    resume_with_decision(
        store, plan.id, decision="approve", approver="alice", code=code("alice", plan.id)
    )
    assert "signed decisions only" in _refused(store, plan.id, 0)
    res = CliRunner().invoke(
        app, ["plans", "approve", str(plan.id), "--by", "alice", "--key-file", str(key)]
    )
    assert res.exit_code == 0, res.output
    run.join()
    approved = store.audit_events(plan_id=plan.id, action="approved")
    assert len(approved) == 1 and approved[0].details["authenticated"] == "signature"
