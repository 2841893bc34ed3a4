"""A restored store that predates applied steps never applies them again (issue 25).

Real services: the private cluster ``capplanbackup`` archiving into pgBackRest, a real
supervisord with real ``rq worker`` processes (the supervisor scaler), Prefect's test server.
An approved plan's steps are due; the restore point is taken; the ``apply-due`` sweeper
applies them (the pool really moves); the cluster is restored to the point before with
pgBackRest by hand (no ``capplan db restore``: capplan must notice on its own). The restored
store holds the steps ``pending``. The next sweeper run must write nothing:

* one step 2 -> 4 applied after the backup: the live count is at its target: ``noop``;
* 2 -> 4 then 4 -> 2 (A -> B -> A): the live count is back at the first step's from_workers,
  so the guard alone would write 2 -> 4 a second time; the restore check settles it
  ``expired`` and the second ``noop``;

and a plan whose approval deadline passed meanwhile expires "restored from backup" while
one inside its window stays resumable; the restore is audited.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from capplan_adapters.store.db import open_store
from capplan_app.live.harness import (
    HarnessError,
    Supervisord,
    start_supervisord,
    stop_supervisord,
)
from capplan_core.planning.stored_plan import PlanDraft, PlanStatus, StepDraft, StepStatus
from capplan_core.policy import ScalingPolicy, parse_policies
from capplan_core.recovery import RECOVERED_ACTION, RESTORED_ACTION, RESTORED_REASON
from tests.approvers import approve, env_approval
from tests.backup_cluster import ArchivedCluster
from tests.service_helpers import delete_tagged

pytestmark = [pytest.mark.integration, pytest.mark.slow]
LIVE_REDIS_URL = os.environ.get("CAPPLAN_TEST_REDIS_LIVE", "redis://127.0.0.1:6379/9")


def _policies() -> list[ScalingPolicy]:
    base = {
        "mode": "manual",
        "slo": {"wait_p95_seconds": 30},
        "scaling": {
            "min_workers": 1,
            "max_workers": 6,
            "cooldown_seconds": 0,
            "startup_seconds": 0,
        },
        "forecast": {"interval_minutes": 15},
        "approval": env_approval(["erin"]),
    }
    return parse_policies(
        {
            "policies": [
                {
                    **base,
                    "name": "pool",
                    "queue": "pool",
                    "target": {"kind": "supervisor", "name": "rqw"},
                },
                {
                    **base,
                    "name": "late",
                    "queue": "late",
                    "target": {"kind": "supervisor", "name": "late"},
                },
                {
                    **base,
                    "name": "waiting",
                    "queue": "waiting",
                    "target": {"kind": "supervisor", "name": "waiting"},
                },
            ]
        }
    )


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[Supervisord]:
    import redis

    tid = f"rst{uuid.uuid4().hex[:8]}"
    r = redis.Redis.from_url(LIVE_REDIS_URL, socket_connect_timeout=2)
    try:
        r.ping()
    except redis.ConnectionError:
        pytest.fail(f"Redis is not reachable at {LIVE_REDIS_URL} (bin/services)", pytrace=False)
    (tmp_path / "sup").mkdir()
    try:
        sup = start_supervisord(tmp_path / "sup", tid, LIVE_REDIS_URL, numprocs=6)
    except HarnessError as err:
        pytest.fail(str(err), pytrace=False)
    try:
        yield sup
    finally:
        left = stop_supervisord(sup)
        delete_tagged(r, tid)
        assert not left, f"orphan processes after supervisord stopped: {left}"


def _draft(
    policy: ScalingPolicy, moves: list[tuple[int, int]], now: datetime, run: str
) -> PlanDraft:
    return PlanDraft(
        policy_name=policy.name,
        queue=policy.queue,
        mode="manual",
        current_workers=moves[0][0],
        target_workers=moves[-1][1],
        confidence=0.9,
        slo_achievable=True,
        as_of=now,
        flow_run_id=run,
        steps=[
            StepDraft(now - timedelta(seconds=60 - 10 * i), a, b, "test")
            for i, (a, b) in enumerate(moves)
        ],
        details={"policy": policy.name},
    )


@pytest.mark.parametrize("moves", [[(2, 4)], [(2, 4), (4, 2)]], ids=["one-step-applied", "a-b-a"])
def test_a_restored_store_that_predates_applied_steps_does_not_apply_them_again(
    moves: list[tuple[int, int]],
    archived: ArchivedCluster,
    backup_store_url: str,
    pool: Supervisord,
    prefect_server: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from capplan_app.bootstrap import scaler
    from capplan_app.settings import get_settings
    from flows.apply_due import apply_due_flow

    for k, v in {
        "CAPPLAN_DATABASE_URL": backup_store_url,
        "CAPPLAN_DATA_DIR": str(tmp_path / "data"),
        "CAPPLAN_SCALER": "supervisor",
        "CAPPLAN_SUPERVISOR_URL": pool.url,
        "CAPPLAN_SUPERVISOR_USERNAME": pool.username,
        "CAPPLAN_SUPERVISOR_PASSWORD": pool.password,
    }.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    open_store.cache_clear()
    store = open_store(backup_store_url)
    policies = _policies()
    store.apply_policies(policies, actor="test")
    pool_policy, late_policy, waiting_policy = policies
    sc = scaler(dry_run_replicas=0)
    sc.set_replicas(pool_policy.target, 2)
    assert sc.wait_ready(pool_policy.target, 2, 30).ready

    now = store.now()
    plan_id = store.create_plan(_draft(pool_policy, moves, now, "run-pool"))
    approve(store, plan_id, "erin")  # with erin's code: the write checks it
    late = store.create_plan(_draft(late_policy, [(1, 2)], now, "run-late"))
    store.set_flow_run(late, "flow-run-late", approval_deadline=now + timedelta(seconds=20))
    waiting = store.create_plan(_draft(waiting_policy, [(1, 2)], now, "run-waiting"))
    store.set_flow_run(waiting, "flow-run-waiting", approval_deadline=now + timedelta(hours=1))
    archived.repo.run("backup", "--type=full")
    archived.wait_archived()
    time.sleep(1.5)  # pgBackRest picks a backup that stopped before the target (s)
    target = store.now()  # the restore point: the plan approved, no step applied yet
    time.sleep(1.0)

    swept = apply_due_flow()
    assert [s["outcome"] for s in swept["steps"]] == ["applied"] * len(moves), swept
    final = moves[-1][1]
    assert sc.read(pool_policy.target).replicas == final
    assert len(store.audit_events(plan_id=plan_id, action="scale")) == len(moves)
    pids = sorted(pool.pids())
    while store.now() < now + timedelta(seconds=21):  # the late plan's deadline passes
        time.sleep(0.5)

    archived.wait_archived()  # the WAL past the restore point is in the repository
    t0 = time.monotonic()
    report = archived.restore(target)  # pgBackRest by hand: capplan is not told
    restore_s = time.monotonic() - t0
    restored = open_store(backup_store_url)
    plan = restored.get_plan(plan_id)
    assert plan.status == PlanStatus.APPROVED
    assert [s.status for s in plan.steps] == [StepStatus.PENDING] * len(moves)
    assert restored.audit_events(plan_id=plan_id, action="scale") == []

    again = apply_due_flow()  # the next sweeper run

    plan = restored.get_plan(plan_id)
    statuses = [s.status for s in plan.steps]
    expected = [StepStatus.NOOP] if len(moves) == 1 else [StepStatus.EXPIRED, StepStatus.NOOP]
    assert statuses == expected, [(s.status, s.explanation) for s in plan.steps]
    assert all(
        RESTORED_REASON in str(e.details.get("reason"))
        for e in restored.audit_events(plan_id=plan_id)
        if e.action in ("step_noop", "step_expired")
    )
    assert again["steps"] == [], again
    writes_after = len(restored.audit_events(plan_id=plan_id, action="scale"))
    assert writes_after == 0
    assert sc.read(pool_policy.target).replicas == final
    assert sorted(pool.pids()) == pids  # no worker started or stopped again
    assert plan.status == PlanStatus.APPLIED
    expired = restored.get_plan(late)
    assert expired.status == PlanStatus.EXPIRED
    assert expired.decision_comment and expired.decision_comment.startswith(RESTORED_REASON)
    assert restored.get_plan(waiting).status == PlanStatus.PROPOSED
    noticed = restored.audit_events(action=RESTORED_ACTION)
    assert len(noticed) == 1 and noticed[0].details["noticed_by"] == "apply-due"
    assert noticed[0].details["lineage"].endswith(f":{report['timeline']}")
    recovered = restored.audit_events(action=RECOVERED_ACTION)
    assert len(recovered) == 1 and recovered[0].details["plans_expired"] == [late]
    assert sum(recovered[0].details["steps"].values()) == len(moves)
    print(
        f"\n{len(moves)} step(s) applied after the restore point; restore "
        f"{restore_s:.1f} s (timeline {report['timeline']}); after it: steps {statuses}, "
        f"writes {writes_after}, pool {sc.read(pool_policy.target).replicas} (pids "
        f"unchanged), late approval expired, waiting one resumable; at "
        f"{datetime.now(UTC).isoformat()}"
    )
