"""Signed decisions (capplan_core/approval/signature.py, issue 24): a signature verifies only
for the store, plan content, policy version and decision it was made for, before its expiry,
under the approver's own public key; a pasted token that is not one says which field is wrong.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from capplan_core.approval.signature import (
    SignatureError,
    check_public_key,
    decode_token,
    encode_token,
    new_keypair,
    plan_digest,
    public_key_of,
    sign,
    signature_problem,
    statement_for,
)
from tests.unit.execution.execution_plans import T0, emails_policy, seed_plan, store_at

STORE = "store-a1b2"


def _plan(approve: bool = False):
    (store, _clock), policy = store_at(T0), emails_policy()
    pid = seed_plan(store, policy, (4, 8), (8, 10), approve=approve)
    plan = store.get_plan(pid)  # as the planner stores it: with its policy version
    return dataclasses.replace(plan, details={**plan.details, "policy_version": 3})


def _signed(plan, private: str, **kw):
    st = statement_for(plan, store_id=STORE, decision="approve", approver="alice", now=T0, **kw)
    return st, sign(private, st)


def test_a_signature_verifies_for_exactly_what_was_signed_and_round_trips_as_a_token() -> None:
    private, public = new_keypair()
    assert public_key_of(private) == public and check_public_key(public) == public
    plan = _plan()
    st, sig = _signed(plan, private, max_workers=9, apply_hours=2.0)
    back, back_sig = decode_token(encode_token(st, sig))
    assert back == st and back_sig == sig
    ok = signature_problem(back, back_sig, plan=plan, store_id=STORE, public_keys=[public], now=T0)
    assert ok is None
    # an older key version of the same approver still listed: any of them verifies
    _, other = new_keypair()
    assert (
        signature_problem(st, sig, plan=plan, store_id=STORE, public_keys=[other, public], now=T0)
        is None
    )


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"decision": "reject"}, "does not verify"),  # a rejection turned into... anything else
        ({"max_workers": 40}, "does not verify"),  # a widened cap
        ({"apply_hours": 48.0}, "does not verify"),  # a widened window
        ({"approver": "mallory"}, "does not verify"),
        ({"expires_at": T0 + timedelta(days=7)}, "does not verify"),  # a longer life
        ({"store_id": "store-other"}, "signed for store 'store-other'"),  # replayed across stores
        ({"plan_id": 999}, "signed for plan 999"),
        ({"policy_version": 7}, "policy version 7"),
    ],
)
def test_a_changed_statement_is_refused_naming_why(change, needle) -> None:
    private, public = new_keypair()
    plan = _plan()
    st, sig = _signed(plan, private, max_workers=9, apply_hours=2.0)
    forged = dataclasses.replace(st, **change)
    why = signature_problem(
        forged,
        sig,
        plan=plan,
        store_id=forged.store_id if "store_id" not in change else STORE,
        public_keys=[public],
        now=T0,
    )
    assert why is not None and needle in why, why


def test_an_edited_plan_an_expired_signature_and_a_stranger_key_are_refused() -> None:
    private, public = new_keypair()
    plan = _plan()
    st, sig = _signed(plan, private, valid_s=600)
    edited = dataclasses.replace(
        plan, steps=(plan.steps[0], dataclasses.replace(plan.steps[1], to_workers=40))
    )
    assert plan_digest(edited) != plan_digest(plan)
    why = signature_problem(st, sig, plan=edited, store_id=STORE, public_keys=[public], now=T0)
    assert why is not None and "changed after it was signed" in why
    late = T0 + timedelta(seconds=601)
    why = signature_problem(st, sig, plan=plan, store_id=STORE, public_keys=[public], now=late)
    assert why is not None and "expired" in why
    _, stranger = new_keypair()
    why = signature_problem(st, sig, plan=plan, store_id=STORE, public_keys=[stranger], now=T0)
    assert why is not None and "does not verify under any of their 1 public key" in why
    why = signature_problem(st, sig, plan=plan, store_id=STORE, public_keys=[], now=T0)
    assert why is not None and "none is stored" in why


@pytest.mark.parametrize(
    ("token", "needle"),
    [
        ("deadbeefdeadbeef", "expected 'capplan-decision-v2."),
        ("capplan-decision-v2.!!!.sig", "not URL-safe base64"),
        ("capplan-decision-v2.bm90IGpzb24.sig", "not JSON"),
        ("capplan-decision-v2.WzFd.sig", "not a JSON object"),
    ],
)
def test_a_token_that_is_not_one_is_refused_naming_the_field(token, needle) -> None:
    with pytest.raises(SignatureError, match=None) as err:
        decode_token(token)
    assert needle in str(err.value)


def test_a_statement_with_a_bad_field_is_refused_naming_it() -> None:
    private, _ = new_keypair()
    st, sig = _signed(_plan(), private)
    token = encode_token(dataclasses.replace(st, decision="maybe"), sig)
    with pytest.raises(SignatureError, match="decision = 'maybe'"):
        decode_token(token)
    with pytest.raises(SignatureError, match="private key: 3 bytes"):
        sign("AAAA", st)
    with pytest.raises(SignatureError, match="--valid-seconds"):
        statement_for(_plan(), store_id=STORE, decision="approve", approver="a", now=T0, valid_s=0)


def test_a_strategy_flipped_to_hybrid_after_signing_breaks_the_signature() -> None:
    """An ``auto`` policy's plan records the strategy it carries out; hybrid also moves the
    KEDA rate target, so flipping it in the database after the decision must not verify."""
    private, public = new_keypair()
    plan = _plan()
    st, sig = _signed(plan, private)
    assert plan_digest(
        dataclasses.replace(plan, details={**plan.details, "strategy": "predictive"})
    ) == plan_digest(plan)
    flipped = dataclasses.replace(plan, details={**plan.details, "strategy": "hybrid"})
    why = signature_problem(st, sig, plan=flipped, store_id=STORE, public_keys=[public], now=T0)
    assert why is not None and "changed after it was signed" in why
    hybrid = dataclasses.replace(plan, details={**plan.details, "strategy": "hybrid"})
    st, sig = _signed(hybrid, private)
    assert (
        signature_problem(st, sig, plan=hybrid, store_id=STORE, public_keys=[public], now=T0)
        is None
    )
    back = dataclasses.replace(hybrid, details={**hybrid.details, "strategy": "predictive"})
    why = signature_problem(st, sig, plan=back, store_id=STORE, public_keys=[public], now=T0)
    assert why is not None and "changed after it was signed" in why
