"""Four eyes on policy changes that widen authority (issue 24, capplan_core/approval/
widening.py and policy_signing.py): such a version is stored pending and takes effect only
with a current approver's signature, never the applier's own; narrowing changes apply at
once; a version made current in the database without a signature is refused at the write."""

from __future__ import annotations

from dataclasses import replace

import pytest

from capplan_adapters.store.memory import InMemoryPlanStore
from capplan_core.approval.authority import authority_problem
from capplan_core.approval.policy_signing import sign_version, statement_for_version
from capplan_core.approval.signature import new_keypair
from capplan_core.approval.widening import widening_reasons
from capplan_core.planning.stored_plan import PlanStatus
from capplan_core.policy import PolicyError, ScalingPolicy
from tests.unit.approval.key_endorsements import endorsed
from tests.unit.execution.execution_plans import T0, emails_policy, seed_plan, store_at

ALICE_PRIVATE, ALICE_PUBLIC = new_keypair()
BOB_PRIVATE, BOB_PUBLIC = new_keypair()


def _policy(**changes) -> ScalingPolicy:
    doc = emails_policy().model_dump(mode="json")
    doc["mode"] = "manual"
    doc["approval"] = {"approvers": ["alice", "bob"], "proof": "signature"}
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = doc
        for p in parents:
            node = node[p]
        node[leaf] = value
    return ScalingPolicy.model_validate(doc)


def _token(store, name, version, private=ALICE_PRIVATE, approver="alice", store_id=None):
    st = statement_for_version(
        store.policy_version(name, version),
        store_id=store_id or store.store_id(),
        approver=approver,
        now=store.now(),
    )
    return sign_version(private, st)


def _store() -> InMemoryPlanStore:
    store, _clock = store_at(T0)
    store.add_approver_public_key("alice", ALICE_PUBLIC, actor="admin")
    store.add_approver_public_key(
        "bob",
        BOB_PUBLIC,
        actor="admin",
        endorsement=endorsed(store, "bob", BOB_PUBLIC, private=ALICE_PRIVATE),
    )
    store.apply_policies([_policy()], actor="ops")
    return store


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"mode": "auto"}, "mode manual -> auto"),
        ({"approval__approvers": ["alice", "bob", "mallory"]}, "approvers added: mallory"),
        ({"approval__approver_keys": {"alice": "env:MINE"}}, "approver_keys changed: alice"),
        ({"approval__proof": "code"}, "approval.proof signature -> code"),
        ({"scaling__max_workers": 500}, "scaling.max_workers"),
        ({"scaling__auto_max_change": 90}, "scaling.auto_max_change"),
        ({"scaling__confidence_threshold": 0.1}, "scaling.confidence_threshold"),
        ({"target__name": "payments"}, "target changed"),
    ],
)
def test_what_widens_authority(change, why) -> None:
    reasons = widening_reasons(_policy(), _policy(**change))
    assert any(why in r for r in reasons), reasons


def test_narrowing_and_neutral_changes_do_not_widen() -> None:
    base = _policy()
    for change in (
        {"mode": "advisory"},
        {"approval__approvers": ["alice"]},
        {"scaling__max_workers": 10},
        {"slo__wait_seconds": 5.0},
        {"approval__require_distinct_requester": True},
    ):
        assert widening_reasons(base, _policy(**change)) == [], change


def test_a_widening_version_waits_for_a_current_approver_and_then_takes_effect() -> None:
    store = _store()
    (change,) = store.apply_policies([_policy(mode="auto")], actor="mallory")
    assert change.changed and change.version == 2 and change.pending
    assert store.get_policy("emails").mode == "manual"  # v1 still rules
    assert store.current_policy("emails").version == 1
    assert [v.pending for v in store.policy_history("emails")] == [False, True]
    # applied again: the same pending version, nothing new
    (again,) = store.apply_policies([_policy(mode="auto")], actor="mallory")
    assert (again.version, again.changed) == (2, False)
    done = store.approve_policy_version("emails", 2, _token(store, "emails", 2), actor="alice")
    assert (done.version, done.previous) == (2, 1)
    assert store.get_policy("emails").mode == "auto"
    v2 = store.policy_version("emails", 2)
    assert not v2.pending and v2.approved_by == "alice" and v2.approval
    assert store.audit_events(action="policy_version_approved")


def test_a_narrowing_change_applies_at_once() -> None:
    store = _store()
    (change,) = store.apply_policies([_policy(scaling__max_workers=10)], actor="mallory")
    assert change.changed and not change.pending
    assert store.get_policy("emails").scaling.max_workers == 10


@pytest.mark.parametrize(
    ("applier", "signer", "private", "store_id", "why"),
    [
        ("alice", "alice", ALICE_PRIVATE, None, "a second person must sign"),
        ("ops", "mallory", ALICE_PRIVATE, None, "not an approver"),
        ("ops", "bob", ALICE_PRIVATE, None, "does not verify"),
        ("ops", "alice", ALICE_PRIVATE, "another-store", "signed for store"),
    ],
    ids=["applier-signs", "stranger", "wrong-key", "replayed-across-stores"],
)
def test_a_widening_version_is_refused_without_a_second_valid_signature(
    applier, signer, private, store_id, why
) -> None:
    store = _store()
    store.apply_policies([_policy(mode="auto")], actor=applier)
    token = _token(store, "emails", 2, private=private, approver=signer, store_id=store_id)
    with pytest.raises(PolicyError, match=why):
        store.approve_policy_version("emails", 2, token, actor=signer)
    assert store.get_policy("emails").mode == "manual"
    (refused,) = store.audit_events(action="policy_approval_refused")
    assert why in refused.details["reason"]


def test_a_version_made_current_in_the_database_is_refused_at_the_write() -> None:
    store = _store()
    store.apply_policies([_policy(mode="auto")], actor="mallory")
    # mallory, with database access, makes the pending v2 current and clears its flag
    history = store.versions["emails"]
    history[1] = replace(history[1], pending=False)
    store.current_versions["emails"] = 2
    store.policies["emails"] = history[1].policy
    auto = store.get_policy("emails")
    pid = seed_plan(store, auto, (4, 6), approve=False)
    made = store.plans[pid]  # the planner records the version a plan was made under
    store.plans[pid] = replace(made, details={**made.details, "policy_version": 2})
    store.transition(pid, PlanStatus.APPROVED, actor="capplan-auto")
    plan = store.get_plan(pid)

    def problem(versions):
        return authority_problem(
            plan,
            auto,
            store.audit_events(plan_id=pid, action="approved"),
            lambda _n: "",
            store_id=store.store_id(),
            public_keys=store.approver_public_keys,
            versions=versions,
        )

    why = problem(store.policy_history("emails"))
    assert why is not None and "widens authority (mode manual -> auto)" in why
    assert "no approver signed it" in why
    # the same version signed by alice (as approve_policy_version stores it) holds
    history[1] = replace(
        history[1],
        approval=_token(store, "emails", 2),
        approved_by="alice",
        approved_at=store.now(),
    )
    assert problem(store.policy_history("emails")) is None
