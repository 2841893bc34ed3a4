"""The write checks its own authority (capplan_core/approval/authority.py, issue 24): a plan
flipped to ``approved`` in the database, a decision whose cap was widened there, an approver
the policy does not list, or an auto approval its policy could not have given is refused at
the write, audited ``unauthorized``, and its plan fails; nothing is written. A real decision
(the approval service stores its code) and a real auto approval go through."""

from __future__ import annotations

from datetime import timedelta

from capplan_core.approval.auth import approval_code
from capplan_core.approval.authority import AUTO_ACTOR, authority_problem
from capplan_core.approval.service import Submission, record_decision
from capplan_core.execution.executor import apply_step
from capplan_core.planning.stored_plan import PlanStatus, StepStatus
from capplan_core.policy import ScalingPolicy
from tests.unit.execution.execution_plans import KEY, T0, emails_policy, seed_plan, store_at
from tests.unit.execution.faulty_scaler import FaultyScaler

ALICE_KEY = "a" * 32


def _policy(mode: str = "manual", auto_max_change: int = 10) -> ScalingPolicy:
    doc = emails_policy().model_dump(mode="json")
    doc["mode"] = mode
    doc["scaling"]["auto_max_change"] = auto_max_change
    doc["approval"] = {
        "approvers": ["alice"],
        "proof": "code",
        "approver_keys": {"alice": "env:ALICE_KEY"},
    }
    return ScalingPolicy.model_validate(doc)


def _keys(name: str) -> str:
    if name != "alice":
        raise LookupError(f"no key for {name}")
    return ALICE_KEY


def _check(store):
    def check(plan, policy):
        return authority_problem(
            plan, policy, store.audit_events(plan_id=plan.id, action="approved"), _keys
        )

    return check


def _apply(store, policy, pid):
    scaler = FaultyScaler({KEY: 4})
    out = apply_step(
        store, scaler, policy, pid, store.get_plan(pid).steps[0].id, authority=_check(store)
    )
    return out, scaler


def test_a_decision_the_approval_service_recorded_is_applied() -> None:
    (store, _clock), policy = store_at(T0), _policy()
    pid = seed_plan(store, policy, (4, 8), approve=False)
    code = approval_code(ALICE_KEY, pid, "approve", max_workers=7)
    approval = record_decision(
        store, policy, pid, Submission("approve", "alice", code, max_workers=7)
    )
    assert approval.approved
    out, scaler = _apply(store, policy, pid)
    assert out.outcome == "applied" and scaler.replicas[KEY] == 7


def test_a_plan_flipped_to_approved_in_the_database_is_refused_at_the_write() -> None:
    (store, _clock), policy = store_at(T0), _policy()
    pid = seed_plan(store, policy, (4, 8), approve=True)  # alice, without any code
    out, scaler = _apply(store, policy, pid)
    assert out.outcome == "refused" and out.plan_failed
    assert "carries no approval code" in out.reason
    assert scaler.actions == [] and scaler.replicas[KEY] == 4
    plan = store.get_plan(pid)
    assert plan.status == PlanStatus.FAILED and plan.steps[0].status == StepStatus.REFUSED
    (audit,) = store.audit_events(plan_id=pid, action="unauthorized")
    assert "carries no approval code" in audit.details["reason"]
    assert store.audit_events(plan_id=pid, action="scale") == []


def test_a_widened_cap_a_stranger_and_a_forged_code_are_refused() -> None:
    (store, _clock), policy = store_at(T0), _policy()
    pid = seed_plan(store, policy, (4, 8), approve=False)
    code = approval_code(ALICE_KEY, pid, "approve", max_workers=5)
    # the row as a database writer would leave it: alice's real code, a wider cap
    store.transition(
        pid,
        PlanStatus.APPROVED,
        actor="alice",
        details={"max_workers": 8, "approval_code": code},
    )
    out, scaler = _apply(store, policy, pid)
    assert out.outcome == "refused" and "does not match" in out.reason and scaler.actions == []
    plan = store.get_plan(pid)

    def problem(actor, details, pol=policy):
        from capplan_core.planning.stored_plan import AuditEntry

        row = AuditEntry(1, T0, actor, "approved", pid, plan.queue, details)
        flipped = type(plan)(
            **{**plan.__dict__, "status": PlanStatus.APPROVED, "decided_by": actor}
        )
        return authority_problem(flipped, pol, [row], _keys)

    assert "not an approver" in problem("mallory", {"approval_code": code})
    assert "does not match" in problem("alice", {"approval_code": "0" * 16})
    assert problem("alice", {"approval_code": code, "max_workers": 5}) is None


def test_auto_approvals_hold_only_under_an_auto_policy_within_its_limits() -> None:
    (store, _clock), auto = store_at(T0), _policy("auto", auto_max_change=5)
    pid = seed_plan(store, auto, (4, 8), approve=False)
    store.transition(pid, PlanStatus.APPROVED, actor=AUTO_ACTOR)
    plan = store.get_plan(pid)
    rows = store.audit_events(plan_id=pid, action="approved")
    assert authority_problem(plan, auto, rows, _keys) is None
    manual = _policy("manual")
    assert "only a person may approve it" in authority_problem(plan, manual, rows, _keys)
    narrow = _policy("auto", auto_max_change=2)
    assert "more than" in authority_problem(plan, narrow, rows, _keys)
    out, scaler = _apply(store, auto, pid)
    assert out.outcome == "applied" and scaler.replicas[KEY] == 8


def test_a_capped_auto_approval_holds_only_within_auto_max_change() -> None:
    (store, clock), auto = store_at(T0), _policy("auto", auto_max_change=3)
    pid = seed_plan(store, auto, (4, 12), approve=False)
    store.transition(pid, PlanStatus.APPROVED, actor=AUTO_ACTOR, details={"max_workers": 7})
    plan = store.get_plan(pid)
    rows = store.audit_events(plan_id=pid, action="approved")
    assert authority_problem(plan, auto, rows, _keys) is None
    tight = _policy("auto", auto_max_change=2)
    assert "caps it at 7 workers" in authority_problem(plan, tight, rows, _keys)
    clock.at = T0 + timedelta(seconds=1)
