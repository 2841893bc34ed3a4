"""Signed decisions through the CLI on a real store (issue 24): an approver makes a key pair
(`capplan approvals keygen`, the private key stays in their file), an admin registers the
public key (`register-key`), the approver signs a decision (`approvals sign`), the approval
service takes it, and `capplan plans apply-due` applies the step: the write verified the
signature again. The same signed decision replayed against another store that holds a plan
with the same id is refused, and a revoked key stops the write."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capplan_adapters.store.db import open_store
from capplan_app.bootstrap import plan_store
from capplan_cli.main import app
from capplan_core.approval.service import Submission, authenticate, record_decision
from capplan_core.planning.stored_plan import PlanStatus
from tests.integration.store.plan_seed import POLICY, due_plan

pytestmark = [pytest.mark.integration]


def _no_secret(name: str) -> str:
    raise LookupError("signatures only")


def _seed(store) -> int:
    """The store tests' ``emails`` plan under a policy that takes signed decisions only."""
    approval = POLICY.approval.model_copy(update={"approvers": ["alice"], "proof": "signature"})
    store.apply_policies([POLICY.model_copy(update={"approval": approval})], actor="ops")
    return due_plan(store)


def _cli(*args: str) -> str:
    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == 0, res.output
    return res.stdout.strip()


def test_keygen_register_sign_approve_and_apply(capplan_env, tmp_path: Path) -> None:
    key_file = tmp_path / "alice.key"
    public = _cli("approvals", "keygen", "--out", str(key_file)).splitlines()[-1]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert public.startswith("ed25519:")  # printed so that it never reads as an option
    assert public.removeprefix("ed25519:") not in key_file.read_text()  # private key only
    _cli("approvals", "register-key", "alice", public, "--by", "admin")
    store = plan_store()
    assert store.approver_public_keys("alice") == [public.removeprefix("ed25519:")]
    pid = _seed(store)
    token = _cli(
        "approvals", "sign", str(pid), "--decision", "approve", "--by", "alice",
        "--key-file", str(key_file),
    ).splitlines()[-1]  # fmt: skip
    policy = store.get_policy("emails")
    sub = Submission("approve", "alice", token)

    # replayed: another store (its own id) with a plan of the same id refuses it, audited
    other = open_store(f"sqlite:///{tmp_path / 'other.db'}")
    assert other.store_id() != store.store_id()
    assert _seed(other) == pid
    refusal = authenticate(other, policy, pid, sub, "scheduler", _no_secret)
    assert refusal is not None and "signed for store" in refusal.reason
    assert other.audit_events(plan_id=pid, action="decision_refused")

    # in its own store it is taken, recorded, and the write verifies it again
    assert authenticate(store, policy, pid, sub, "scheduler", _no_secret) is None
    assert record_decision(store, policy, pid, sub).approved
    res = CliRunner().invoke(app, ["plans", "apply-due", "--json"])
    rows = json.loads(res.stdout)
    assert res.exit_code == 0, rows
    assert [(r["plan_id"], r["outcome"]) for r in rows] == [(pid, "applied")]
    assert store.get_plan(pid).status == PlanStatus.APPLIED


def test_a_revoked_key_stops_the_write_of_a_decision_it_signed(capplan_env, tmp_path) -> None:
    key_file = tmp_path / "alice.key"
    public = _cli("approvals", "keygen", "--out", str(key_file)).splitlines()[-1]
    _cli("approvals", "register-key", "alice", public)
    store = plan_store()
    pid = _seed(store)
    token = _cli(
        "approvals", "sign", str(pid), "--decision", "approve", "--by", "alice",
        "--key-file", str(key_file),
    ).splitlines()[-1]  # fmt: skip
    policy, sub = store.get_policy("emails"), Submission("approve", "alice", token)
    assert authenticate(store, policy, pid, sub, "scheduler", _no_secret) is None
    record_decision(store, policy, pid, sub)
    _cli("approvals", "revoke-key", "alice", "1")
    res = CliRunner().invoke(app, ["plans", "apply-due", "--json"])
    rows = json.loads(res.stdout)
    assert res.exit_code == 1 and rows[0]["outcome"] == "refused", rows
    assert "does not verify" in rows[0]["reason"]
    assert store.get_plan(pid).status == PlanStatus.FAILED
    assert store.audit_events(plan_id=pid, action="scale") == []


def test_bad_input_names_the_field(capplan_env, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["approvals", "register-key", "alice", "not-a-key"])
    assert res.exit_code == 2 and "public_key" in res.output
    res = CliRunner().invoke(
        app,
        ["approvals", "sign", "1", "--decision", "approve", "--by", "alice",
         "--key-file", str(tmp_path / "missing.key")],
    )  # fmt: skip
    assert res.exit_code == 2 and "--key-file" in res.output
    key_file = tmp_path / "k"
    _cli("approvals", "keygen", "--out", str(key_file))
    res = CliRunner().invoke(app, ["approvals", "keygen", "--out", str(key_file)])
    assert res.exit_code == 2 and "exists" in res.output
