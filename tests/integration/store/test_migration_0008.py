"""Migration 0008 (``approval.proof: signature`` becomes the default): a policy stored before
``proof`` existed meant approval codes, and keeps meaning them; its version stays intact (the
write's chain check accepts it) unless its document had been edited in the store, on SQLite
and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from capplan_adapters.store.db import alembic_config, open_store
from capplan_core.planning.policy_versions import document_digest, policy_document
from capplan_core.policy import ApprovalSpec
from tests.integration.store.plan_seed import POLICY
from tests.integration.store.test_migrate_lock import empty_pg_url, empty_url  # noqa: F401

pytestmark = pytest.mark.integration


def _old_document(name: str) -> dict:
    """The policy as a store before ``approval.proof`` held it (no proof key)."""
    doc = json.loads(json.dumps({**policy_document(POLICY), "name": name, "queue": name}))
    doc["approval"] = {"approvers": ["alice"], "timeout_seconds": 3600.0}
    return doc


def test_migration_0008_keeps_code_approvals_and_intact_digests(
    empty_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    command.upgrade(alembic_config(empty_url), "0007")
    eng = create_engine(empty_url)
    now = datetime.now(UTC)
    docs = {"kept": _old_document("kept"), "edited": _old_document("edited")}
    with eng.begin() as c:
        for i, (name, doc) in enumerate(docs.items(), start=1):
            c.execute(
                text(
                    "INSERT INTO scaling_policy (id, name, enabled, mode, queue, target, "
                    "slo_targets, scaling_constraints, spec, created_at, updated_at, version) "
                    "VALUES (:id, :n, true, 'manual', :n, '{}', '{}', '{}', :spec, :t, :t, 1)"
                ),
                {"id": i, "n": name, "spec": json.dumps(doc), "t": now},
            )
            # 'edited' was changed in the store after it was applied: its digest no longer
            # matches, and the migration must not make it match
            sha = document_digest(doc) if name == "kept" else "0" * 64
            c.execute(
                text(
                    "INSERT INTO policy_version (name, version, spec, sha256, applied_by, "
                    "applied_at, comment) VALUES (:n, 1, :spec, :sha, 'ops', :t, '')"
                ),
                {"n": name, "spec": json.dumps(doc), "sha": sha, "t": now},
            )
    eng.dispose()
    command.upgrade(alembic_config(empty_url), "head")
    store = open_store(empty_url)
    kept = store.current_policy("kept")
    assert kept.policy.approval.proof == "code"  # what it meant when it was stored
    assert kept.intact  # the write's chain check accepts it
    assert store.get_policy("kept").approval.proof == "code"
    edited = store.current_policy("edited")
    assert edited.policy.approval.proof == "code" and not edited.intact
    # a policy written today without a proof takes signatures
    assert ApprovalSpec().proof == "signature"
