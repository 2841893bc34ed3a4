"""A first policy version under trust anchors (issue 24, capplan_core/approval/widening.py
pending_reasons): with ``CAPPLAN_APPROVER_ANCHORS`` set, a database writer cannot start a
policy's chain of versions with one that acts (manual or auto) on its own say; an approver
whose key is in force signs it, and the write checks that again. Without anchors a database
writer can register keys as well, so a first version takes effect at once, as documented.

The same rule decides what the store holds pending and what the write accepts: a version
that adds approvers over one that listed none took effect at once, and its plans hold."""

from __future__ import annotations

from dataclasses import replace

import pytest

from capplan_adapters.store.memory import InMemoryPlanStore
from capplan_core.approval.authority import authority_problem
from capplan_core.approval.policy_signing import sign_version, statement_for_version
from capplan_core.approval.signature import new_keypair
from capplan_core.planning.stored_plan import PlanStatus
from capplan_core.policy import PolicyError, ScalingPolicy
from tests.unit.approval.key_endorsements import endorsed
from tests.unit.execution.execution_plans import T0, emails_policy, seed_plan, store_at

ALICE_PRIVATE, ALICE_PUBLIC = new_keypair()
BOB_PRIVATE, BOB_PUBLIC = new_keypair()


def _policy(mode: str = "auto", approvers: tuple[str, ...] = ("alice", "bob")) -> ScalingPolicy:
    doc = emails_policy().model_dump(mode="json")
    doc["mode"] = mode
    doc["approval"] = {"approvers": list(approvers), "proof": "signature"}
    return ScalingPolicy.model_validate(doc)


def _store(*, anchored: bool) -> InMemoryPlanStore:
    store, _clock = store_at(T0)
    if anchored:
        store.approver_anchors = {"alice": (ALICE_PUBLIC,)}
    store.add_approver_public_key("alice", ALICE_PUBLIC, actor="admin")
    store.add_approver_public_key(
        "bob",
        BOB_PUBLIC,
        actor="admin",
        endorsement=endorsed(store, "bob", BOB_PUBLIC, private=ALICE_PRIVATE),
    )
    return store


def _sign(store, version: int, *, private=ALICE_PRIVATE, approver="alice") -> str:
    st = statement_for_version(
        store.policy_version("emails", version),
        store_id=store.store_id(),
        approver=approver,
        now=store.now(),
    )
    return sign_version(private, st)


def _write_check(store: InMemoryPlanStore) -> str | None:
    """Why an auto plan made under the current version would be refused at the write."""
    current = store.current_policy("emails")
    pid = seed_plan(store, current.policy, (4, 6), approve=False)
    made = store.plans[pid]
    store.plans[pid] = replace(made, details={**made.details, "policy_version": current.version})
    store.transition(pid, PlanStatus.APPROVED, actor="capplan-auto")
    return authority_problem(
        store.get_plan(pid),
        current.policy,
        store.audit_events(plan_id=pid, action="approved"),
        lambda _n: "",
        store_id=store.store_id(),
        public_keys=store.approver_public_keys,
        versions=store.policy_history("emails"),
        anchored=bool(store.approver_anchors),
    )


def test_without_anchors_a_first_version_takes_effect_at_once() -> None:
    store = _store(anchored=False)
    (change,) = store.apply_policies([_policy()], actor="ops")
    assert not change.pending and store.current_policy("emails").version == 1
    assert _write_check(store) is None


@pytest.mark.parametrize("mode", ["auto", "manual"])
def test_with_anchors_a_first_version_that_acts_waits_for_an_approver_in_force(mode) -> None:
    store = _store(anchored=True)
    (change,) = store.apply_policies([_policy(mode)], actor="ops")
    assert change.pending and "trust anchors" in change.pending[0]
    with pytest.raises(Exception, match="no policy named"):
        store.get_policy("emails")  # nothing is in effect yet
    # the applier cannot sign it; a key not in force verifies nothing
    mallory_private, _ = new_keypair()
    with pytest.raises(PolicyError, match="does not verify"):
        store.approve_policy_version(
            "emails", 1, _sign(store, 1, private=mallory_private), actor="alice"
        )
    done = store.approve_policy_version("emails", 1, _sign(store, 1), actor="alice")
    assert (done.version, done.previous) == (1, None)
    assert store.get_policy("emails").mode == mode
    if mode == "auto":
        assert _write_check(store) is None


def test_with_anchors_an_advisory_first_version_takes_effect_at_once() -> None:
    store = _store(anchored=True)
    (change,) = store.apply_policies([_policy("advisory")], actor="ops")
    assert not change.pending and store.get_policy("emails").mode == "advisory"
    # advisory -> auto over a version with approvers is the usual four eyes
    (wider,) = store.apply_policies([_policy("auto")], actor="ops")
    assert wider.pending and "mode advisory -> auto" in wider.pending


def test_with_anchors_a_first_version_made_current_in_the_database_is_refused_at_the_write():
    store = _store(anchored=True)
    store.apply_policies([_policy("auto")], actor="mallory")
    history = store.versions["emails"]  # mallory clears the pending flag with SQL
    history[0] = replace(history[0], pending=False)
    store.current_versions["emails"] = 1
    store.policies["emails"] = history[0].policy
    why = _write_check(store)
    assert why is not None and "trust anchors" in why and "no approver signed it" in why


def test_anchors_set_on_an_existing_store_the_current_version_is_signed_in_place() -> None:
    store = _store(anchored=False)
    store.apply_policies([_policy("auto")], actor="ops")
    store.approver_anchors = {"alice": (ALICE_PUBLIC,)}  # the operator sets anchors later
    assert "no approver signed it" in str(_write_check(store))
    done = store.approve_policy_version("emails", 1, _sign(store, 1), actor="alice")
    assert (done.version, done.previous, done.superseded_plans) == (1, 1, ())
    assert store.current_policy("emails").approved_by == "alice"
    assert _write_check(store) is None


def test_a_version_adding_approvers_over_one_without_them_holds_at_the_write() -> None:
    # found while adding anchors: the store made such a version current at once (nobody
    # could sign it), but the write's chain check asked for a signature and refused its plans
    store = _store(anchored=False)
    store.apply_policies([_policy("auto", approvers=())], actor="ops")
    (change,) = store.apply_policies([_policy("auto")], actor="ops")
    assert not change.pending and store.current_policy("emails").version == 2
    assert _write_check(store) is None
