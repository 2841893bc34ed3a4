"""Approval codes bind one decision on one plan with its limits; who may decide follows the
policy's approvers and the distinct-requester rule; the policy refuses bad approver settings."""

from __future__ import annotations

import pytest

from capplan_core.approval.auth import (
    DecisionClaim,
    approval_code,
    authorization_problem,
    code_problem,
    key_ref,
    new_approver_key,
)
from capplan_core.policy import PolicyError, parse_policies

KEY = "alice-key-0123456789"


def _policy(**approval):
    return parse_policies(
        {
            "policies": [
                {
                    "name": "emails",
                    "queue": "emails",
                    "target": {"name": "w"},
                    "slo": {"wait_p95_seconds": 30},
                    "approval": approval,
                }
            ]
        }
    )[0]


def test_a_code_binds_the_plan_the_decision_and_the_limits() -> None:
    c = approval_code(KEY, 7, "approve")
    assert len(c) == 16 and c == approval_code(KEY, 7, "approve")  # deterministic
    others = {
        approval_code(KEY, 8, "approve"),
        approval_code(KEY, 7, "reject"),
        approval_code(KEY, 7, "approve", max_workers=12),
        approval_code(KEY, 7, "approve", apply_hours=2.0),
        approval_code("mallory-key-0123456789", 7, "approve"),
    }
    assert c not in others and len(others) == 5
    claim = DecisionClaim(plan_id=7, decision="approve", approver="alice", code=c)
    assert code_problem(claim, KEY) is None
    assert code_problem(claim, "other-key") is not None
    widened = DecisionClaim(plan_id=7, decision="approve", approver="alice", code=c, max_workers=99)
    assert "with these limits" in str(code_problem(widened, KEY))
    assert new_approver_key() != new_approver_key() and len(new_approver_key()) >= 40


def test_who_may_decide() -> None:
    p = _policy(approvers=["alice", "bob"], require_distinct_requester=True)
    assert authorization_problem(p, "alice", ["schedule", "ops"]) is None
    assert "not listed for policy 'emails' (approval.approvers: alice, bob)" in str(
        authorization_problem(p, "mallory", [])
    )
    assert "requested this plan" in str(authorization_problem(p, "bob", ["bob", "ops"]))
    assert authorization_problem(_policy(approvers=["bob"]), "bob", ["bob"]) is None
    assert "nobody" in str(authorization_problem(_policy(), "alice", []))
    assert key_ref(p, "alice") == "prefect-secret:capplan-approver-alice"
    q = _policy(approvers=["alice"], approver_keys={"alice": "env:ALICE_KEY"})
    assert key_ref(q, "alice") == "env:ALICE_KEY"


@pytest.mark.parametrize(
    "approval,field",
    [
        ({"approvers": ["Alice Smith"]}, "approval.approvers.0"),
        ({"approvers": ["capplan-auto"]}, "capplan's own actors"),
        ({"approvers": ["a", "a"]}, "twice"),
        ({"approvers": ["a"], "approver_keys": {"b": "env:B"}}, "not in approvers"),
        ({"approvers": ["a"], "approver_keys": {"a": "plain-secret"}}, "approval.approver_keys.a"),
        ({"require_distinct_requester": "yes"}, "approval.require_distinct_requester"),
    ],
)
def test_bad_approver_settings_are_refused_naming_the_field(approval, field) -> None:
    with pytest.raises(PolicyError, match=field.replace(".", r"\.").replace("(", r"\(")):
        _policy(**approval)


@pytest.mark.parametrize(
    "source,message",
    [
        (
            {"kind": "rq", "redis_url": "redis://:hunter2@r:6379/0"},
            "source.redis_url: carries a password",
        ),
        ({"kind": "prometheus", "prometheus_url": "http://u:pw@p:9090"}, "source.prometheus_url"),
        ({"kind": "rq", "redis_url_ref": "redis://:pw@r"}, "source.redis_url_ref"),
        ({"kind": "rq", "redis_url": "redis://r", "redis_url_ref": "env:R"}, "not both"),
    ],
)
def test_credentials_are_references_never_inline(source, message) -> None:
    with pytest.raises(PolicyError) as err:
        parse_policies(
            {
                "policies": [
                    {
                        "name": "e",
                        "queue": "e",
                        "target": {"name": "w"},
                        "slo": {"wait_p95_seconds": 30},
                        "source": source,
                    }
                ]
            }
        )
    assert message in str(err.value)
    assert "hunter2" not in str(err.value) and ":pw@" not in str(err.value)


def test_the_approval_form_has_no_default_decision() -> None:
    from tasks.approve import approval_form

    schema = approval_form(4).model_json_schema()
    assert "default" not in schema["properties"]["decision"]
    assert {"decision", "approver", "approval_code"} <= set(schema["required"])
    assert schema["properties"]["decision"]["enum"] == ["approve", "reject"]
