"""Four eyes on widening policy changes, on SQLite and the real PostgreSQL (issue 24):
`capplan policies apply` stores a version that widens authority as pending (the old version
still rules, the output says so); the applier cannot make it current; a current approver's
`capplan policies approve` (signed with their key) does; a version made current by SQL is
refused at the write by `capplan plans apply-due`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text
from typer.testing import CliRunner

from capplan_app.bootstrap import plan_store
from capplan_app.settings import get_settings
from capplan_cli.main import app
from capplan_core.planning.stored_plan import PlanStatus
from tests.integration.store.plan_seed import POLICY, due_plan

pytestmark = [pytest.mark.integration]


def _cli(*args: str, code: int = 0) -> str:
    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == code, (res.output, res.exception)
    return res.output


def _policy_file(tmp_path: Path, **over) -> str:
    doc = POLICY.model_dump(mode="json")
    doc["approval"] = {"approvers": ["alice"], "proof": "signature"}
    doc.update(over)
    path = tmp_path / f"policy-{len(list(tmp_path.glob('policy-*')))}.yaml"
    path.write_text(yaml.safe_dump({"policies": [doc]}))
    return str(path)


@pytest.fixture
def env(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CAPPLAN_DATABASE_URL", store_url)
    monkeypatch.setenv("CAPPLAN_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    key = tmp_path / "alice.key"
    public = _cli("approvals", "keygen", "--out", str(key)).strip().splitlines()[-1]
    _cli("approvals", "register-key", "alice", public, "--by", "admin")
    _cli("policies", "apply", _policy_file(tmp_path), "--by", "ops")
    yield key
    get_settings.cache_clear()


def test_a_widening_change_waits_for_a_second_person(env: Path, tmp_path: Path) -> None:
    out = _cli("policies", "apply", _policy_file(tmp_path, mode="auto"), "--by", "mallory")
    assert "NOT in effect" in out and "mode manual -> auto" in out
    store = plan_store()
    assert store.get_policy("emails").mode == "manual"
    # the applier's own signature does not count, even with a listed approver's key
    out = _cli(
        "policies", "approve", "emails", "2", "--by", "mallory", "--key-file", str(env), code=1
    )
    assert "not an approver" in out, out
    _cli("policies", "approve", "emails", "2", "--by", "alice", "--key-file", str(env))
    assert store.get_policy("emails").mode == "auto"
    assert [e.action for e in store.audit_events(action="policy_version_approved")]


def test_a_pending_version_made_current_by_sql_is_refused_at_the_write(
    env: Path, tmp_path: Path
) -> None:
    out = _cli("policies", "apply", _policy_file(tmp_path, mode="auto"), "--by", "mallory")
    assert "NOT in effect" in out
    store = plan_store()
    with store.engine.begin() as c:  # what mallory does with database access
        c.execute(text("UPDATE policy_version SET pending = false WHERE version = 2"))
        c.execute(
            text(
                "UPDATE scaling_policy SET version = 2, mode = 'auto', spec = "
                "(SELECT spec FROM policy_version WHERE version = 2)"
            )
        )
    assert store.get_policy("emails").mode == "auto"
    pid = due_plan(store, to_workers=6, policy_version=2)
    store.transition(pid, PlanStatus.APPROVED, actor="capplan-auto")
    res = CliRunner().invoke(app, ["plans", "apply-due", "--json"])
    rows = json.loads(res.stdout)
    assert res.exit_code == 1 and rows[0]["outcome"] == "refused", rows
    assert "widens authority" in rows[0]["reason"]
    assert store.audit_events(plan_id=pid, action="scale") == []


def test_a_key_needs_another_approvers_endorsement_and_one_inserted_by_sql_verifies_nothing(
    env: Path, tmp_path: Path
) -> None:
    """Four eyes on keys: bob's key is refused until alice endorses it (`capplan approvals
    endorse-key`), then taken; a key mallory inserts for alice by SQL is not in force, so the
    policy approval she signs with it is refused."""
    bob_key = tmp_path / "bob.key"
    bob = _cli("approvals", "keygen", "--out", str(bob_key)).strip().splitlines()[-1]
    out = _cli("approvals", "register-key", "bob", bob, "--by", "admin", code=1)
    assert "needs another approver's endorsement" in out
    # alice vouches for it; her own key cannot vouch for hers, nor bob's for himself
    out = _cli("approvals", "endorse-key", "bob", bob, "--by", "bob", "--key-file", str(bob_key),
               code=2)  # fmt: skip
    assert "not a key in force of 'bob'" in out
    token = _cli(
        "approvals", "endorse-key", "bob", bob, "--by", "alice", "--key-file", str(env)
    ).strip().splitlines()[-1]  # fmt: skip
    _cli("approvals", "register-key", "bob", bob, "--by", "admin", "--endorsement", token)
    store = plan_store()
    assert store.approver_public_keys("bob") == [bob.removeprefix("ed25519:")]  # stored bare
    assert [e.details["approver"] for e in store.audit_events(action="approver_key_refused")] == [
        "bob"
    ]

    # mallory, with database access, slips her own key in as alice's
    mallory_key = tmp_path / "mallory.key"
    mallory = _cli("approvals", "keygen", "--out", str(mallory_key)).strip().splitlines()[-1]
    with store.engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO approver_public_key (approver, version, public_key, added_by, "
                "added_at) VALUES ('alice', 9, :key, 'mallory', CURRENT_TIMESTAMP)"
            ),
            {"key": mallory.removeprefix("ed25519:")},
        )
    assert mallory.removeprefix("ed25519:") not in store.approver_public_keys("alice")
    _cli("policies", "apply", _policy_file(tmp_path, mode="auto"), "--by", "ops")
    out = _cli(
        "policies", "approve", "emails", "2", "--by", "alice", "--key-file", str(mallory_key),
        code=1,
    )  # fmt: skip
    assert "does not verify" in out, out
    assert store.get_policy("emails").mode == "manual"


def test_with_trust_anchors_an_unsigned_first_version_is_refused_and_a_new_one_waits(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # alice's key (registered first) becomes the trust anchor the operator configures
    public = plan_store().approver_public_keys("alice")[0]
    monkeypatch.setenv("CAPPLAN_APPROVER_ANCHORS", f"alice:{public}")
    get_settings.cache_clear()
    store = plan_store()
    # the policy applied before the anchors (v1, unsigned) no longer holds at the write...
    pid = due_plan(store, to_workers=6, policy_version=1)
    store.transition(pid, PlanStatus.APPROVED, actor="alice")
    res = CliRunner().invoke(app, ["plans", "apply-due", "--json"])
    rows = json.loads(res.stdout)
    assert res.exit_code == 1 and rows[0]["outcome"] == "refused", rows
    assert "trust anchors" in rows[0]["reason"]
    # ...until an approver signs it in place
    out = _cli("policies", "approve", "emails", "1", "--by", "alice", "--key-file", str(env))
    assert "signed in place" in out
    # a new policy that acts is stored pending, and takes effect when alice signs it
    doc = {**POLICY.model_dump(mode="json"), "name": "payments", "queue": "payments"}
    doc["target"] = {**doc["target"], "name": "payments-worker"}
    doc["approval"] = {"approvers": ["alice"], "proof": "signature"}
    path = tmp_path / "payments.yaml"
    path.write_text(yaml.safe_dump({"policies": [doc]}))
    out = _cli("policies", "apply", str(path), "--by", "ops")
    assert "NOT in effect" in out and "trust anchors" in out and "key is in force" in out
    out = _cli("policies", "approve", "payments", "1", "--by", "alice", "--key-file", str(env))
    assert "is now in effect (a new policy)" in out
    assert store.get_policy("payments").mode == POLICY.mode
