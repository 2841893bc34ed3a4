"""Signed decisions end to end in the approval service and at the write (issue 24,
capplan_core/approval/signed.py): an approver signs with a private key that no server holds;
the store keeps their public key. Attacker cases, each refused and audited: a decision signed
for another store (replayed across stores), a decision for a plan edited after it was signed,
a signature paired with a wider cap or another name, a revoked key, and a plan flipped to
``approved`` in the database under a policy that takes signatures only."""

from __future__ import annotations

from datetime import timedelta

import pytest

from capplan_adapters.store.memory import InMemoryPlanStore
from capplan_core.approval.auth import approval_code
from capplan_core.approval.authority import authority_problem
from capplan_core.approval.service import Submission, authenticate, record_decision
from capplan_core.approval.signature import (
    check_public_key,
    encode_token,
    new_keypair,
    printable_public_key,
    public_key_of,
    sign,
    statement_for,
)
from capplan_core.execution.executor import apply_step
from capplan_core.planning.stored_plan import PlanStatus, StepStatus
from capplan_core.policy import ScalingPolicy
from tests.unit.approval.key_endorsements import endorsed
from tests.unit.execution.execution_plans import KEY, T0, emails_policy, seed_plan, store_at
from tests.unit.execution.faulty_scaler import FaultyScaler

ALICE_PRIVATE, ALICE_PUBLIC = new_keypair()
MALLORY_PRIVATE, _ = new_keypair()


def _policy(proof: str = "signature") -> ScalingPolicy:
    doc = emails_policy().model_dump(mode="json")
    doc["mode"] = "manual"
    doc["approval"] = {
        "approvers": ["alice"],
        "approver_keys": {"alice": "env:ALICE_KEY"},
        "proof": proof,
    }
    return ScalingPolicy.model_validate(doc)


def _no_secret(name: str) -> str:
    raise LookupError(f"no shared secret for {name} (signatures only)")


def _token(store, pid, *, private=ALICE_PRIVATE, decision="approve", store_id=None, **limits):
    st = statement_for(
        store.get_plan(pid),
        store_id=store_id or store.store_id(),
        decision=decision,
        approver="alice",
        now=store.now(),
        **limits,
    )
    return encode_token(st, sign(private, st))


def _seeded(proof: str = "signature"):
    (store, clock), policy = store_at(T0), _policy(proof)
    store.add_approver_public_key("alice", ALICE_PUBLIC, actor="admin")
    pid = seed_plan(store, policy, (4, 8), approve=False)
    return store, clock, policy, pid


def _authenticate(store, policy, pid, sub):
    return authenticate(store, policy, pid, sub, "scheduler", _no_secret)


def _check(store):
    def check(plan, policy):
        return authority_problem(
            plan,
            policy,
            store.audit_events(plan_id=plan.id, action="approved"),
            _no_secret,
            store_id=store.store_id(),
            public_keys=store.approver_public_keys,
        )

    return check


def _apply(store, policy, pid):
    scaler = FaultyScaler({KEY: 4})
    step_id = store.get_plan(pid).steps[0].id
    return apply_step(store, scaler, policy, pid, step_id, authority=_check(store)), scaler


def test_a_signed_decision_is_taken_recorded_and_holds_at_the_write() -> None:
    store, _clock, policy, pid = _seeded()
    sub = Submission("approve", "alice", _token(store, pid, max_workers=7), max_workers=7)
    assert _authenticate(store, policy, pid, sub) is None
    approval = record_decision(store, policy, pid, sub)
    assert approval.approved and approval.max_workers == 7
    (row,) = store.audit_events(plan_id=pid, action="approved")
    assert row.details["authenticated"] == "signature" and row.details["signature"] == sub.code
    # the cap clipped the step (8 -> 7): the plan as signed still verifies at the write
    out, scaler = _apply(store, policy, pid)
    assert out.outcome == "applied" and scaler.replicas[KEY] == 7


def test_the_write_checks_the_signature_as_of_the_decision_not_of_the_write() -> None:
    store, clock, policy, pid = _seeded()
    sub = Submission("approve", "alice", _token(store, pid, valid_s=60))
    assert _authenticate(store, policy, pid, sub) is None
    record_decision(store, policy, pid, sub)
    clock.at = T0 + timedelta(minutes=30)  # the statement expired; it was valid when taken
    assert _check(store)(store.get_plan(pid), policy) is None


@pytest.mark.parametrize(
    ("make", "why"),
    [
        # replayed: a real signature of alice, for the same plan id in another store
        (lambda s, p: Submission("approve", "alice", _token(s, p, store_id="other")), "store"),
        # signed by someone else's key, in alice's name
        (
            lambda s, p: Submission("approve", "alice", _token(s, p, private=MALLORY_PRIVATE)),
            "does not verify",
        ),
        # a valid signature paired with a wider cap than was signed
        (
            lambda s, p: Submission("approve", "alice", _token(s, p, max_workers=5), max_workers=8),
            "max_workers",
        ),
        # a signed rejection submitted as an approval
        (lambda s, p: Submission("approve", "alice", _token(s, p, decision="reject")), "decision"),
        # not a token at all, and the policy takes signatures only
        (lambda s, p: Submission("approve", "alice", "0" * 16), "signed decisions only"),
        (lambda s, p: Submission("approve", "alice", "capplan-decision-v2.e30.AA"), "statement"),
    ],
    ids=["replayed-across-stores", "wrong-key", "widened-cap", "flipped", "code", "garbage"],
)
def test_a_decision_that_is_not_what_was_signed_is_refused_and_audited(make, why) -> None:
    store, _clock, policy, pid = _seeded()
    refusal = _authenticate(store, policy, pid, make(store, pid))
    assert refusal is not None and why in refusal.reason
    (audit,) = store.audit_events(plan_id=pid, action="decision_refused")
    assert audit.details["authenticated"] is False and why in audit.details["reason"]
    assert store.get_plan(pid).status == PlanStatus.PROPOSED


def test_a_decision_for_a_plan_edited_after_it_was_signed_is_refused() -> None:
    store, _clock, policy, pid = _seeded()
    token = _token(store, pid)
    # a database writer edits the plan's step after the approver signed (8 -> 20)
    plan = store.get_plan(pid)
    step = plan.steps[0]
    store.plans[pid] = type(plan)(
        **{**plan.__dict__, "steps": [type(step)(**{**step.__dict__, "to_workers": 20})]}
    )
    refusal = _authenticate(store, policy, pid, Submission("approve", "alice", token))
    assert refusal is not None and "changed after it was signed" in refusal.reason


def test_an_edit_after_the_decision_or_a_revoked_key_stops_the_write() -> None:
    store, _clock, policy, pid = _seeded()
    sub = Submission("approve", "alice", _token(store, pid))
    assert _authenticate(store, policy, pid, sub) is None
    record_decision(store, policy, pid, sub)
    store.revoke_approver_public_key("alice", 1, actor="admin")
    out, scaler = _apply(store, policy, pid)
    assert out.outcome == "refused" and "none is stored" in out.reason
    assert scaler.actions == [] and store.get_plan(pid).status == PlanStatus.FAILED
    assert store.get_plan(pid).steps[0].status == StepStatus.REFUSED
    (audit,) = store.audit_events(plan_id=pid, action="unauthorized")
    assert "does not verify" in audit.details["reason"]


def test_a_plan_flipped_to_approved_with_a_real_code_is_refused_where_signatures_rule() -> None:
    store, _clock, policy, pid = _seeded()
    # whoever holds alice's old shared secret makes a valid code and flips the row
    store.transition(
        pid,
        PlanStatus.APPROVED,
        actor="alice",
        details={"approval_code": approval_code("a" * 32, pid, "approve")},
    )
    out, scaler = _apply(store, policy, pid)
    assert out.outcome == "refused" and "signed decisions only" in out.reason
    assert scaler.actions == [] and scaler.replicas[KEY] == 4


def test_public_keys_are_versioned_per_approver_and_checked_before_they_are_stored() -> None:
    store = InMemoryPlanStore()
    _, second = new_keypair()
    bob_private, bob_public = new_keypair()
    assert store.add_approver_public_key("alice", ALICE_PUBLIC, actor="admin") == 1
    assert store.add_approver_public_key("alice", ALICE_PUBLIC, actor="admin") == 1
    # alice's second key is vouched for by another approver (four eyes on keys)
    store.add_approver_public_key(
        "bob",
        bob_public,
        actor="admin",
        endorsement=endorsed(store, "bob", bob_public, private=ALICE_PRIVATE),
    )
    vouched = endorsed(store, "alice", second, by="bob", private=bob_private)
    assert store.add_approver_public_key("alice", second, actor="admin", endorsement=vouched) == 2
    assert store.approver_public_keys("alice") == [second, ALICE_PUBLIC]
    store.revoke_approver_public_key("alice", 2, actor="admin")
    assert store.approver_public_keys("alice") == [ALICE_PUBLIC]
    with pytest.raises(ValueError, match="public key"):
        store.add_approver_public_key("alice", "not-a-key", actor="admin")
    added = store.audit_events(action="approver_key_added")
    assert [(a.details["approver"], a.details["version"]) for a in added] == [
        ("alice", 1),
        ("bob", 1),
        ("alice", 2),
    ]


def test_a_key_slipped_into_the_store_decides_nothing_and_its_decision_fails_at_the_write() -> None:
    """A writer of the store (no approver's private key) adds their own public key for
    alice: through the repository it is refused (no endorsement), audited; written straight
    into the table, it is not in force, so a decision it signed is refused when submitted and,
    recorded by SQL as well, at the write: nothing scales."""
    from capplan_core.approval.key_trust import KeyRecord
    from capplan_core.planning.errors import StoreError

    store, _clock, policy, pid = _seeded()
    mallory_public = public_key_of(MALLORY_PRIVATE)
    with pytest.raises(StoreError, match="needs another approver's endorsement"):
        store.add_approver_public_key("alice", mallory_public, actor="mallory")
    (refused,) = store.audit_events(action="approver_key_refused")
    assert refused.actor == "mallory" and refused.details["approver"] == "alice"
    # straight into the table (what an UPDATE/INSERT by SQL does)
    store.approver_keys.append(KeyRecord("alice", 2, mallory_public, store.now()))
    assert store.approver_public_keys("alice") == [ALICE_PUBLIC]
    forged = Submission("approve", "alice", _token(store, pid, private=MALLORY_PRIVATE))
    refusal = _authenticate(store, policy, pid, forged)
    assert refusal is not None and "does not verify" in refusal.reason
    # the decision recorded by SQL too: the write refuses it, audited, and scales nothing
    store.transition(
        pid,
        PlanStatus.APPROVED,
        actor="alice",
        details={"authenticated": "signature", "signature": forged.code},
    )
    out, scaler = _apply(store, policy, pid)
    assert out.outcome == "refused" and scaler.actions == [] and scaler.replicas[KEY] == 4
    assert store.audit_events(plan_id=pid, action="unauthorized")


def test_a_printed_public_key_never_reads_as_a_command_line_option() -> None:
    """One key in 64 is bare base64 that starts with '-': CI's `register-key alice -EyH9...`
    was read as an unknown option. keygen prints the prefixed form; both forms store bare."""
    dashed = next(public for _, public in iter(new_keypair, None) if public.startswith("-"))
    printed = printable_public_key(dashed)
    assert printed == "ed25519:" + dashed
    assert check_public_key(printed) == dashed == check_public_key(dashed)
    store = InMemoryPlanStore()
    assert store.add_approver_public_key("alice", printed, actor="admin") == 1
    assert store.add_approver_public_key("alice", dashed, actor="admin") == 1  # same key
    assert store.approver_public_keys("alice") == [dashed]
