"""One live plan per queue, stale approvals, decided once under races, idempotent storage and
the approver's cap: on SQLite and on the real PostgreSQL (issue 12, points 5-7)."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from capplan_adapters.store.models import (
    AuditEventRow,
    CapacityPlanRow,
    DataQualityReportRow,
    ForecastPointRow,
    ScalingStepRow,
    SimulationResultRow,
)
from capplan_adapters.store.repo import PlanStore
from capplan_core.planning.errors import CapRefused, DecisionConflict, StalePlan
from capplan_core.planning.stored_plan import (
    PlanStatus,
)
from tests.integration.store.plan_seed import emails_draft, forecast_points

pytestmark = pytest.mark.integration


def _count(store: PlanStore, model: type) -> int:
    with store.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


# -- point 5: one live plan per queue --------------------------------------------------------
def test_database_refuses_a_second_live_plan_of_a_queue(store: PlanStore) -> None:
    a, b = store.create_plan(emails_draft()), store.create_plan(emails_draft())
    store.transition(b, PlanStatus.APPROVED, actor="alice")
    with pytest.raises(IntegrityError), store.session() as s, s.begin():
        # bypass the store's rules: the partial unique index alone must refuse it
        s.execute(
            update(CapacityPlanRow).where(CapacityPlanRow.id == a).values(status=PlanStatus.APPLIED)
        )
    # other statuses are not limited: the older plan is superseded, the newer approved
    assert [p.status for p in store.list_plans(queue="emails")] == ["approved", "superseded"]


def test_newer_plan_supersedes_older_proposed_ones_audited(store: PlanStore) -> None:
    first = store.create_plan(emails_draft())
    second = store.create_plan(emails_draft())
    third = store.create_plan(emails_draft())
    statuses = {p.id: p.status for p in store.list_plans(queue="emails")}
    assert statuses == {first: "superseded", second: "superseded", third: "proposed"}
    assert all(s.status == "cancelled" for s in store.get_plan(first).steps)
    sup = store.audit_events(action="superseded")
    assert [(e.plan_id, e.details["by_plan"]) for e in sup] == [(first, second), (second, third)]
    # a skipped plan (no data) does not supersede the plan waiting for a decision
    store.create_plan(emails_draft(skipped_reason="no usable history", steps=[], forecast=[]))
    assert store.get_plan(third).status == "proposed"
    assert store.newer_plan(third) is None


def test_approving_a_plan_that_is_not_the_newest_is_refused_with_the_reason(
    store: PlanStore,
) -> None:
    old = store.create_plan(emails_draft())
    store.transition(old, PlanStatus.APPROVED, actor="alice")
    newer = store.create_plan(emails_draft())
    store.transition(newer, PlanStatus.REJECTED, actor="bob")
    older_proposed = store.create_plan(emails_draft())
    newest = store.create_plan(emails_draft())
    with pytest.raises(StalePlan, match=rf"plan {newest} \(proposed\) is newer"):
        store.transition(older_proposed, PlanStatus.APPROVED, actor="carol")
    assert store.current_plan("emails").id == old  # type: ignore[union-attr]
    store.transition(newest, PlanStatus.APPROVED, actor="dave")
    assert store.current_plan("emails").id == newest  # type: ignore[union-attr]
    assert store.get_plan(old).status == "superseded"


@pytest.mark.parametrize("to", [PlanStatus.APPROVED, PlanStatus.REJECTED])
def test_ten_threads_deciding_one_plan_exactly_one_wins(store: PlanStore, to: PlanStatus) -> None:
    plan_id = store.create_plan(emails_draft())
    barrier = threading.Barrier(10)
    won: list[str] = []
    conflicts: list[str] = []
    other: list[BaseException] = []

    def decide(i: int) -> None:
        barrier.wait()
        try:
            store.transition(plan_id, to, actor=f"approver-{i}")
            won.append(f"approver-{i}")
        except DecisionConflict as err:
            conflicts.append(str(err))
        except BaseException as err:  # noqa: BLE001 - anything else is the bug we look for
            other.append(err)

    threads = [threading.Thread(target=decide, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert other == []
    assert len(won) == 1 and len(conflicts) == 9
    assert all(f"already {to.value} by {won[0]}" in c for c in conflicts)
    plan = store.get_plan(plan_id)
    assert (plan.status, plan.decided_by) == (to.value, won[0])
    assert len(store.audit_events(plan_id=plan_id, action=to.value)) == 1


# -- point 6: idempotent storage ------------------------------------------------------------
def test_storing_the_same_runs_plan_twice_returns_the_same_plan(store: PlanStore) -> None:
    first = store.create_plan(emails_draft(run="run-a"))
    again = store.create_plan(emails_draft(run="run-a"))
    assert again == first
    assert [
        _count(store, m)
        for m in (
            CapacityPlanRow,
            ScalingStepRow,
            SimulationResultRow,
            ForecastPointRow,
            DataQualityReportRow,
        )
    ] == [1, 3, 1, 4, 1]
    # another queue or another run is another plan
    other = store.create_plan(emails_draft(run="run-b"))
    assert other != first and _count(store, CapacityPlanRow) == 2
    assert [p.predicted_rate for p in store.forecast_points(first)] == [2.0, 3.0, 4.0, 5.0]


def test_concurrent_retries_of_one_store_make_one_plan(store: PlanStore) -> None:
    barrier = threading.Barrier(6)
    ids: list[int] = []

    def put() -> None:
        barrier.wait()
        ids.append(store.create_plan(emails_draft(run="run-race")))

    threads = [threading.Thread(target=put) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 6 and len(set(ids)) == 1
    assert _count(store, CapacityPlanRow) == 1 and _count(store, ForecastPointRow) == 4


def test_a_failure_in_the_middle_stores_nothing(store: PlanStore) -> None:
    before = store.create_plan(emails_draft(run="run-0"))
    bad = forecast_points()
    bad[2] = replace(bad[2], predicted_rate=None)  # type: ignore[arg-type]  # NOT NULL
    with pytest.raises(IntegrityError):
        store.create_plan(emails_draft(run="run-1", forecast=bad))
    assert [
        _count(store, m)
        for m in (
            CapacityPlanRow,
            ScalingStepRow,
            SimulationResultRow,
            ForecastPointRow,
            DataQualityReportRow,
        )
    ] == [1, 3, 1, 4, 1]
    # nothing half-done: the earlier plan was not superseded by the failed one
    assert store.get_plan(before).status == "proposed"
    assert store.audit_events(action="superseded") == []
    # the retry after the fault stores the whole plan once
    fixed = store.create_plan(emails_draft(run="run-1"))
    assert store.create_plan(emails_draft(run="run-1")) == fixed
    assert _count(store, ForecastPointRow) == 8


# -- point 7: the approver's cap --------------------------------------------------------------
@pytest.mark.parametrize(
    ("cap", "why"),
    [(9, "below the plan's current count of 10"), (0, "never scales the pool to zero")],
)
def test_a_cap_below_the_current_count_or_zero_is_refused(
    store: PlanStore, cap: int, why: str
) -> None:
    plan_id = store.create_plan(emails_draft())
    with pytest.raises(CapRefused, match=why):
        store.transition(plan_id, PlanStatus.APPROVED, actor="alice", details={"max_workers": cap})
    plan = store.get_plan(plan_id)
    assert plan.status == "proposed"
    assert [(s.from_workers, s.to_workers) for s in plan.steps] == [(10, 15), (15, 20), (20, 12)]


def test_a_cap_between_current_and_target_clips_and_recomputes_later_steps(
    store: PlanStore,
) -> None:
    plan_id = store.create_plan(emails_draft())
    plan = store.transition(
        plan_id, PlanStatus.APPROVED, actor="alice", details={"max_workers": 13}
    )
    assert [(s.from_workers, s.to_workers) for s in plan.steps] == [(10, 13), (13, 13), (13, 12)]
    assert store.get_plan(plan_id).steps == plan.steps
    assert plan.steps[1].explanation["planned"] == {"from_workers": 15, "to_workers": 20}
    assert store.approval_limits(plan_id)["max_workers"] == 13
    # a cap at or above the peak changes nothing
    other = store.create_plan(emails_draft())
    plan = store.transition(other, PlanStatus.APPROVED, actor="bob", details={"max_workers": 20})
    assert [(s.from_workers, s.to_workers) for s in plan.steps] == [(10, 15), (15, 20), (20, 12)]
    assert _count(store, AuditEventRow) >= 3
