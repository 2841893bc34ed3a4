"""A plan flipped to ``approved`` in the database is not executed (issue 24): `capplan plans
apply-due`, on a real store, refuses its step at the write, audits it ``unauthorized``, fails
the plan and exits 1, and writes nothing; the same plan approved with the approver's code is
applied by the same command."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from capplan_app.bootstrap import plan_store
from capplan_cli.main import app
from capplan_core.planning.stored_plan import PlanStatus, StepStatus
from tests.approvers import approve, env_approval
from tests.integration.store.plan_seed import POLICY, due_plan

pytestmark = [pytest.mark.integration]


def _plan() -> int:
    """The store tests' ``emails`` plan, its policy listing alice (key from the environment),
    with one step due now."""
    store = plan_store()
    approval = POLICY.approval.model_copy(update=env_approval(["alice"]))
    store.apply_policies([POLICY.model_copy(update={"approval": approval})], actor="ops")
    return due_plan(store)


def _apply_due() -> tuple[int, list[dict]]:
    res = CliRunner().invoke(app, ["plans", "apply-due", "--json"])
    return res.exit_code, json.loads(res.stdout)


def test_a_plan_flipped_to_approved_in_sql_is_refused_at_the_write(capplan_env) -> None:
    pid = _plan()
    store = plan_store()
    with store.engine.begin() as c:  # what someone with database access would do
        c.execute(
            text(
                "UPDATE capacity_plan SET status = 'approved', decided_by = 'alice' WHERE id = :i"
            ),
            {"i": pid},
        )
    code, rows = _apply_due()
    assert code == 1
    assert [(r["plan_id"], r["outcome"]) for r in rows] == [(pid, "refused")]
    assert "no recorded approval" in rows[0]["reason"]
    plan = store.get_plan(pid)
    assert plan.status == PlanStatus.FAILED and plan.steps[0].status == StepStatus.REFUSED
    assert len(store.audit_events(plan_id=pid, action="unauthorized")) == 1
    assert store.audit_events(plan_id=pid, action="scale") == []


def test_the_same_plan_approved_with_the_approvers_code_is_applied(capplan_env) -> None:
    pid = _plan()
    approve(plan_store(), pid, "alice")
    code, rows = _apply_due()
    assert code == 0, rows
    assert [(r["plan_id"], r["outcome"]) for r in rows] == [(pid, "applied")]
    assert plan_store().get_plan(pid).status == PlanStatus.APPLIED
