"""Test approvers: listed in the policies the tests apply, each with a key of their own kept in
a Prefect Secret block (capplan-approver-<name>), as docs/security.md sets it up."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from capplan_core.approval.auth import approval_code
from capplan_core.policy import ScalingPolicy, load_policies

TEST_APPROVERS = ("alice", "bob", "carol", "dave", "erin", "frank", "gina")


def key_for(name: str) -> str:
    return f"test-approver-key-of-{name}-0123456789"


def key_env(name: str) -> str:
    """The environment variable holding ``name``'s key in the tests (tests/conftest.py sets
    it for every test approver, so ``env:`` references resolve without a Prefect server)."""
    return f"CAPPLAN_TEST_APPROVER_KEY_{name.upper()}"


def env_approval(names: Iterable[str]) -> dict[str, Any]:
    """A policy's ``approval`` section listing ``names``, who prove decisions with approval
    codes (``proof: code``), their keys read from the environment."""
    names = list(names)
    return {
        "approvers": names,
        "proof": "code",
        "approver_keys": {n: f"env:{key_env(n)}" for n in names},
    }


def approve(store: Any, plan_id: int, approver: str, **limits: Any) -> Any:
    """Record ``approver``'s approval of ``plan_id`` in the store directly, with its approval
    code, as the approval service records it (for tests that have no paused run): the write
    checks that code again (capplan_core/approval/authority.py)."""
    from capplan_core.approval.authority import CODE_DETAIL
    from capplan_core.planning.stored_plan import PlanStatus

    details = {**limits, CODE_DETAIL: code(approver, plan_id, "approve", **limits)}
    return store.transition(plan_id, PlanStatus.APPROVED, actor=approver, details=details)


def save_approver_keys(names: Iterable[str] = TEST_APPROVERS) -> None:
    """Keep each approver's key in its Prefect Secret block (on the current Prefect API)."""
    from capplan_app.secrets import store_prefect_secret

    for name in names:
        store_prefect_secret(f"capplan-approver-{name}", key_for(name))


def with_approvers(
    policies: Iterable[ScalingPolicy],
    names: Iterable[str] = TEST_APPROVERS,
    *,
    proof: str | None = "code",
) -> list[ScalingPolicy]:
    """The policies with ``names`` as their approvers, who prove decisions with approval
    codes (``proof: code``; None: the policy's own proof). Signed decisions, the default,
    are tested on their own (tests/unit/approval, tests/integration/execution/
    test_signed_write.py, the browser test)."""
    names = list(names)
    return [
        p.model_copy(
            update={
                "approval": p.approval.model_copy(
                    update={
                        "approvers": names,
                        "approver_keys": {},
                        "proof": proof or p.approval.proof,
                    }
                )
            }
        )
        for p in policies
    ]


def apply_policy_file(
    path: str | Path, *, actor: str = "test", proof: str | None = "code"
) -> list[str]:
    """Apply a policy file to the configured store, with the test approvers (``proof`` as
    :func:`with_approvers`); its names."""
    from capplan_app.bootstrap import plan_store

    policies = with_approvers(load_policies(path), proof=proof)
    plan_store().apply_policies(policies, actor=actor)
    return [p.name for p in policies if p.enabled]


def code(approver: str, plan_id: int, decision: str = "approve", **limits: Any) -> str:
    return approval_code(key_for(approver), plan_id, decision, **limits)


def decide(store: Any, plan_id: int, decision: str, approver: str, **kw: Any) -> str:
    """Send an authenticated decision to the paused run of ``plan_id`` (as the CLI does)."""
    from capplan_cli.approvals import resume_with_decision

    limits = {k: kw[k] for k in ("max_workers", "apply_hours") if k in kw}
    return resume_with_decision(
        store,
        plan_id,
        decision=decision,
        approver=approver,
        code=code(approver, plan_id, decision, **limits),
        **kw,
    )
