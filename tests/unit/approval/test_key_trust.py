"""Four eyes on approver keys (issue 24, capplan_core/approval/key_trust.py): which keys are
in force. The store's first key (or the configured anchors); every later key only with another
approver's endorsement, made for this store, this approver and this key, before it expired;
a revoked key never again, and a key only a revoked key vouched for neither."""

from __future__ import annotations

from datetime import timedelta

import pytest

from capplan_adapters.store.memory import InMemoryPlanStore
from capplan_core.approval.key_trust import (
    KeyRecord,
    endorse,
    endorsement_statement,
    keys_in_force,
    parse_anchors,
)
from capplan_core.approval.signature import SignatureError, new_keypair
from capplan_core.planning.errors import StoreError
from tests.unit.approval.key_endorsements import endorsed
from tests.unit.execution.execution_plans import T0, store_at

ALICE_PRIVATE, ALICE = new_keypair()
BOB_PRIVATE, BOB = new_keypair()
CAROL_PRIVATE, CAROL = new_keypair()


def _store() -> InMemoryPlanStore:
    store, _clock = store_at(T0)
    store.add_approver_public_key("alice", ALICE, actor="admin")  # the first: trusted on use
    return store


def test_the_first_key_is_trusted_and_every_later_one_needs_another_approvers_endorsement():
    store = _store()
    with pytest.raises(StoreError, match="needs another approver's endorsement"):
        store.add_approver_public_key("bob", BOB, actor="admin")
    assert store.keys_in_force() == {"alice": [ALICE]}
    vouched = endorsed(store, "bob", BOB, private=ALICE_PRIVATE)
    assert store.add_approver_public_key("bob", BOB, actor="admin", endorsement=vouched) == 1
    # bob, now in force, vouches for carol: a chain
    carol = endorsed(store, "carol", CAROL, by="bob", private=BOB_PRIVATE)
    store.add_approver_public_key("carol", CAROL, actor="admin", endorsement=carol)
    assert store.keys_in_force() == {"alice": [ALICE], "bob": [BOB], "carol": [CAROL]}
    added = store.audit_events(action="approver_key_added")
    assert [a.details["endorsed"] for a in added] == [False, True, True]


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (  # another store's endorsement, replayed here
            lambda s: endorse(
                ALICE_PRIVATE,
                endorsement_statement(
                    store_id="another-store",
                    approver="bob",
                    public_key=BOB,
                    endorser="alice",
                    now=s.now(),
                ),
            ),
            "signed for store 'another-store'",
        ),  # fmt: skip
        (lambda s: endorsed(s, "bob", CAROL, private=ALICE_PRIVATE), "not this one"),
        (lambda s: endorsed(s, "bob", BOB, private=BOB_PRIVATE), "does not verify"),
        (lambda s: endorsed(s, "bob", BOB, by="carol", private=CAROL_PRIVATE), "'carol'"),
        (lambda s: "capplan-key-v1.garbage", "endorsement"),
    ],
    ids=[
        "replayed-across-stores",
        "other-key",
        "wrong-signer-key",
        "endorser-not-in-force",
        "garbage",
    ],
)
def test_an_endorsement_that_does_not_hold_is_refused_and_audited(make, why) -> None:
    store = _store()
    with pytest.raises(StoreError, match="not endorsed|endorsement") as err:
        store.add_approver_public_key("bob", BOB, actor="mallory", endorsement=make(store))
    assert why in str(err.value)
    (audit,) = store.audit_events(action="approver_key_refused")
    assert audit.actor == "mallory" and why in audit.details["reason"]
    assert "bob" not in store.keys_in_force()


def test_no_one_endorses_their_own_key_and_an_expired_endorsement_is_refused() -> None:
    store, clock = store_at(T0)
    store.add_approver_public_key("alice", ALICE, actor="admin")
    with pytest.raises(SignatureError, match="cannot endorse their own key"):
        endorsement_statement(
            store_id=store.store_id(), approver="alice", public_key=BOB, endorser="alice",
            now=store.now(),
        )  # fmt: skip
    late = endorse(
        ALICE_PRIVATE,
        endorsement_statement(
            store_id=store.store_id(), approver="bob", public_key=BOB, endorser="alice",
            now=store.now(), valid_s=60,
        ),
    )  # fmt: skip
    clock.at = T0 + timedelta(minutes=5)
    with pytest.raises(StoreError, match="expired"):
        store.add_approver_public_key("bob", BOB, actor="admin", endorsement=late)


def test_a_revoked_key_is_never_in_force_again_nor_what_only_it_vouched_for() -> None:
    store = _store()
    store.add_approver_public_key(
        "bob", BOB, actor="admin", endorsement=endorsed(store, "bob", BOB, private=ALICE_PRIVATE)
    )
    store.revoke_approver_public_key("alice", 1, actor="admin")
    # alice's key is gone, and bob's, which only alice vouched for, with it
    assert store.keys_in_force() == {}
    with pytest.raises(StoreError, match="revoked"):
        store.add_approver_public_key("alice", ALICE, actor="admin")


def test_anchors_from_the_environment_rule_over_the_store() -> None:
    store, _clock = store_at(T0)
    store.approver_anchors = parse_anchors(f"bob:{BOB}")
    # with an anchor set, the store's first key is not trusted on use
    with pytest.raises(StoreError, match="needs another approver's endorsement"):
        store.add_approver_public_key("alice", ALICE, actor="admin")
    assert store.keys_in_force() == {"bob": [BOB]}  # in force with no row at all
    vouched = endorsed(store, "alice", ALICE, by="bob", private=BOB_PRIVATE)
    store.add_approver_public_key("alice", ALICE, actor="admin", endorsement=vouched)
    assert store.approver_public_keys("alice") == [ALICE]


def test_keys_in_force_ignores_rows_without_a_valid_endorsement() -> None:
    records = [
        KeyRecord("alice", 1, ALICE, T0),
        KeyRecord("bob", 1, BOB, T0),  # inserted by SQL: no endorsement
        KeyRecord("carol", 1, CAROL, T0, endorsement="capplan-key-v1.x.y"),
    ]
    assert keys_in_force(records, store_id="s", anchors={}) == {"alice": [ALICE]}


@pytest.mark.parametrize(
    ("text", "why"),
    [("alice", "not 'name:public_key'"), ("alice:nope", "'alice'"), (":abc", "not 'name")],
)
def test_bad_anchors_name_the_entry(text: str, why: str) -> None:
    with pytest.raises(ValueError, match="CAPPLAN_APPROVER_ANCHORS") as err:
        parse_anchors(text)
    assert why in str(err.value)
