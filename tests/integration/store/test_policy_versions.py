"""Policies as versioned records, on the in-memory fake, SQLite and PostgreSQL alike: a
changed spec is a new version (who, when), an unchanged one writes nothing, a change
supersedes the policy's live and proposed plans, a plan's steps run under its own version,
and two policies never share a queue or a target across the store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from capplan_adapters.store.db import open_store
from capplan_adapters.store.memory import InMemoryPlanStore
from capplan_core.planning.errors import StoreError
from capplan_core.planning.policy_versions import policy_diff
from capplan_core.planning.repository import PlanRepository
from capplan_core.planning.stored_plan import PlanDraft, PlanStatus, StepDraft, StepStatus
from capplan_core.policy import PolicyError, ScalingPolicy, parse_policies

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)


def _policy(name: str = "emails", max_workers: int = 50, **over) -> ScalingPolicy:
    doc = {
        "name": name,
        "queue": over.pop("queue", name),
        "mode": "manual",
        "target": {"kind": "deployment", "namespace": "w", "name": over.pop("target", name)},
        "slo": {"wait_p95_seconds": 30},
        "scaling": {"max_workers": max_workers},
    }
    return parse_policies({"policies": [doc]})[0]


def _draft(version: int | None, to: int = 14) -> PlanDraft:
    return PlanDraft(
        policy_name="emails",
        queue="emails",
        mode="manual",
        current_workers=10,
        target_workers=to,
        confidence=0.9,
        slo_achievable=True,
        as_of=T0,
        steps=[
            StepDraft(T0, 10, to, "ramp"),
            StepDraft(T0 + timedelta(minutes=30), to, 10, "after"),
        ],
        details={"policy": "emails", "policy_version": version},
    )


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def repo(request: pytest.FixtureRequest, tmp_path) -> PlanRepository:
    if request.param == "memory":
        return InMemoryPlanStore()
    if request.param == "sqlite":
        return open_store(f"sqlite:///{tmp_path / 'capplan.db'}")
    from tests.conftest import fresh_pg_store_url

    return open_store(fresh_pg_store_url(request.getfixturevalue("pg_url")))


def test_a_changed_spec_is_a_new_version_and_an_unchanged_one_writes_nothing(repo) -> None:
    first = repo.apply_policies([_policy()], actor="alice", comment="initial")
    again = repo.apply_policies([_policy()], actor="bob")
    changed = repo.apply_policies([_policy(max_workers=80)], actor="carol", comment="peak")
    assert [(c.version, c.previous, c.changed) for c in first + again + changed] == [
        (1, None, True),
        (1, 1, False),
        (2, 1, True),
    ]
    history = repo.policy_history("emails")
    assert [(v.version, v.applied_by, v.comment) for v in history] == [
        (1, "alice", "initial"),
        (2, "carol", "peak"),
    ]
    assert history[0].policy.scaling.max_workers == 50
    assert repo.current_policy("emails").version == 2
    assert repo.get_policy("emails").scaling.max_workers == 80
    assert repo.policy_version("emails", 1).policy.scaling.max_workers == 50
    assert [v.name for v in repo.list_policies()] == ["emails"]
    assert history[0].sha256 != history[1].sha256 and len(history[1].sha256) == 64
    assert "-  max_workers: 50" in policy_diff(history[0].policy, history[1].policy)
    applied = [e for e in repo.audit_events() if e.action == "policy_applied"]
    assert [(e.actor, e.details["version"]) for e in applied] == [("alice", 1), ("carol", 2)]
    with pytest.raises(StoreError, match="no policy named 'nope'"):
        repo.current_policy("nope")
    with pytest.raises(StoreError, match="has no version 7"):
        repo.policy_version("emails", 7)


def test_a_policy_change_supersedes_its_live_and_proposed_plans_audited(repo) -> None:
    repo.apply_policies([_policy()], actor="alice")
    live = repo.create_plan(_draft(1))
    repo.transition(live, PlanStatus.APPROVED, actor="bob")
    change = repo.apply_policies([_policy(max_workers=60)], actor="carol")[0]
    assert change.superseded_plans == (live,)
    plan = repo.get_plan(live)
    assert plan.status == PlanStatus.SUPERSEDED
    assert {s.status for s in plan.steps} == {StepStatus.CANCELLED}
    why = [e for e in repo.audit_events(plan_id=live) if e.action == "superseded"]
    assert why and "changed to version 2" in why[-1].details["reason"]
    assert why[-1].actor == "carol"


def test_a_plan_made_under_an_outdated_version_is_superseded_when_stored(repo) -> None:
    repo.apply_policies([_policy()], actor="alice")
    repo.apply_policies([_policy(max_workers=60)], actor="alice")
    late = repo.create_plan(_draft(1))  # planned under v1 while v2 was applied
    assert repo.get_plan(late).status == PlanStatus.SUPERSEDED
    fresh = repo.create_plan(_draft(2))
    assert repo.get_plan(fresh).status == PlanStatus.PROPOSED


def test_steps_execute_under_the_version_the_plan_was_made_under(repo) -> None:
    repo.apply_policies([_policy(max_workers=50)], actor="alice")
    pid = repo.create_plan(_draft(1))
    # the name means something else later; the plan still reads its own version
    repo.apply_policies([_policy(max_workers=90)], actor="alice")
    assert repo.policy_for_plan(repo.get_plan(pid)).scaling.max_workers == 50


def test_two_policies_never_share_a_queue_or_a_target_across_the_store(repo) -> None:
    repo.apply_policies([_policy("emails")], actor="alice")
    with pytest.raises(PolicyError, match="share queue 'emails'"):
        repo.apply_policies([_policy("mails2", queue="emails")], actor="alice")
    with pytest.raises(PolicyError, match="share target"):
        repo.apply_policies([_policy("other", target="emails")], actor="alice")
    assert [v.name for v in repo.list_policies()] == ["emails"]  # nothing written
    # replacing a policy by name with its own queue and target is fine
    repo.apply_policies([_policy("emails", max_workers=70)], actor="alice")
