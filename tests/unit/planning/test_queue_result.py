"""QueueResult (capplan_core/planning/queue_result.py, issue 26): one typed result per queue,
whose JSON form is the documented contract: the keys, their order and which are present."""

from __future__ import annotations

import dataclasses
import json

from capplan_core.planning.queue_result import PUBLIC_KEYS, QueueResult
from capplan_core.planning.stored_plan import StoredSimulation
from tests.unit.execution.execution_plans import T0, emails_policy, seed_plan, store_at

PLAN_KEYS = [
    "id",
    "queue",
    "policy",
    "policy_version",
    "mode",
    "status",
    "current_workers",
    "target_workers",
    "confidence",
    "slo_achievable",
    "created_at",
    "as_of",
    "expires_at",
    "steps",
    "simulation",
]


def _plan(approve: bool = True):
    (store, _clock), policy = store_at(T0), emails_policy()
    return store.get_plan(seed_plan(store, policy, (4, 8), (8, 10), approve=approve))


def test_a_decided_plan_as_users_see_it() -> None:
    plan = _plan()
    out = QueueResult.from_plan(plan).to_json()
    assert list(out) == [*PLAN_KEYS, "decision"]
    assert out["id"] == plan.id and out["queue"] == "emails" and out["policy"] == "emails"
    assert out["status"] == "approved" and out["simulation"] is None
    assert out["steps"] == [
        {
            "execute_at": s.execute_at.isoformat(),
            "from_workers": s.from_workers,
            "to_workers": s.to_workers,
            "reason": "test",
            "status": "pending",
        }
        for s in plan.steps
    ]
    assert out["decision"]["by"] == "alice" and out["decision"]["at"] is not None
    json.dumps(out)  # the JSON form is JSON


def test_a_simulated_undecided_plan_and_its_public_form() -> None:
    sim = StoredSimulation(
        slo_achievement_rate=0.97,
        max_backlog=12.0,
        p95_wait_s=3.5,
        utilization_range=(0.4, 0.8),
        replications=200,
        engine="fluid",
    )
    plan = dataclasses.replace(_plan(approve=False), simulation=sim, skipped_reason=None)
    result = QueueResult.from_plan(plan).with_view(
        {"dropped_rows": {"arrival_rate": {"non_finite": 1}}}, [{"window": 1}], note="hi"
    )
    out = result.to_json()
    assert list(out) == [*PLAN_KEYS, "details", "explanation", "note"]
    assert out["simulation"] == {
        "slo_achievement_rate": 0.97,
        "max_backlog": 12.0,
        "p95_wait_s": 3.5,
        "utilization_range": [0.4, 0.8],
        "replications": 200,
        "engine": "fluid",
        "approximate": True,
        "proved_by": out["simulation"]["proved_by"],
    }
    public = result.public_json()
    assert [k for k in public if k != "dropped_rows"] == [k for k in PUBLIC_KEYS if k in out]
    assert "details" not in public and "explanation" not in public and "created_at" not in public
    assert public["dropped_rows"] == {"arrival_rate": {"non_finite": 1}}
    assert QueueResult.public_of(out) == public  # a result that crossed Prefect as JSON


def test_a_preview_and_a_failure() -> None:
    preview = QueueResult.from_plan(_plan(approve=False)).as_preview(skipped=False).to_json()
    assert preview["id"] is None and preview["status"] == "preview" and list(preview) == PLAN_KEYS
    failed = QueueResult.failure(
        queue="emails",
        policy="emails",
        mode="auto",
        error="forecast: boom",
        failed_stage="forecast",
    ).to_json()
    assert failed == {
        "queue": "emails",
        "policy": "emails",
        "mode": "auto",
        "status": "failed",
        "failed_stage": "forecast",
        "error": "forecast: boom",
    }
    bare = QueueResult.failure(queue="q", policy="p", mode="manual", error="E: x").to_json()
    assert list(bare) == ["queue", "policy", "mode", "status", "error"]
    assert QueueResult.public_of(bare) == {
        "queue": "q",
        "policy": "p",
        "mode": "manual",
        "status": "failed",
        "error": "E: x",
    }
