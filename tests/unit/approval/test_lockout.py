"""A plan's form takes at most MAX_REFUSED_ATTEMPTS refused submissions (issue 24): then even
the right code is refused, and each refusal is audited."""

from __future__ import annotations

from capplan_core.approval.auth import approval_code
from capplan_core.approval.service import MAX_REFUSED_ATTEMPTS, Submission, authenticate
from capplan_core.policy import ScalingPolicy
from tests.unit.execution.execution_plans import T0, emails_policy, seed_plan, store_at

KEY = "k" * 32


def _policy() -> ScalingPolicy:
    doc = emails_policy().model_dump(mode="json")
    doc["approval"] = {
        "approvers": ["alice"],
        "proof": "code",
        "approver_keys": {"alice": "env:ALICE_KEY"},
    }
    return ScalingPolicy.model_validate(doc)


def _setup():
    (store, _clock), policy = store_at(T0), _policy()
    pid = seed_plan(store, policy, (4, 8), approve=False)
    return store, policy, pid


def _submit(store, policy, pid, code: str):
    sub = Submission(decision="approve", approver="alice", code=code)
    return authenticate(store, policy, pid, sub, "schedule", approver_key=lambda _n: KEY)


def test_the_right_code_passes_before_the_lockout() -> None:
    store, policy, pid = _setup()
    assert _submit(store, policy, pid, approval_code(KEY, pid, "approve")) is None


def test_after_too_many_refusals_even_the_right_code_is_refused_and_audited() -> None:
    store, policy, pid = _setup()
    for _ in range(MAX_REFUSED_ATTEMPTS):
        refused = _submit(store, policy, pid, "0" * 16)
        assert refused is not None and "does not match" in refused.reason
    locked = _submit(store, policy, pid, approval_code(KEY, pid, "approve"))
    assert locked is not None and "takes no more decisions" in locked.reason
    assert f"{MAX_REFUSED_ATTEMPTS} submissions were refused" in locked.reason
    audits = store.audit_events(plan_id=pid, action="decision_refused")
    assert len(audits) == MAX_REFUSED_ATTEMPTS + 1
    assert all(a.details["authenticated"] is False for a in audits)
