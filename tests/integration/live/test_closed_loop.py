"""The closed loop on real workers, time-compressed (under 3 minutes), on a shared pool.

supervisord runs 10 real ``rq worker Q Q_low`` processes (2 started) on the local Redis: each
takes Q's jobs first, then Q_low's (strict priority, docs/shared-pools.md). The load
generator steps Q from 2 → 8 jobs/s (0.5 s per job) at a minute boundary 1-2 minutes in,
and keeps Q_low at 1 job/s throughout; Q's SLO is p95 ≤ 2 s, Q_low's p95 ≤ 10 s. The store
holds 4 earlier days of both queues, with Q's step at the same time of day; collect-metrics'
core polls both queues every 5 s; ``capacity-plan`` runs in ``auto`` mode every 15 s, from the store at the
wall clock, and the loop's sweeper applies each approved step at its time, scaling through the
supervisor scaler (``CAPPLAN_SCALER=supervisor``).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from capplan_app.bootstrap import plan_store
from capplan_app.live.loop import ClosedLoop, LoopSpec
from tests.integration.live.conftest import LIVE_REDIS_URL

# serial: a real-time loop (rq workers, a demand step, 15-s cycles) whose measured service
# rate and lag depend on the CPU it gets; bin/test runs it alone after the parallel phase
pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.serial,
    pytest.mark.timeout(420),
]


def test_the_pool_scales_up_before_the_step_and_holds_the_slo(
    prefect_server, capplan_env, tmp_path: Path, tid: str, live_redis
) -> None:
    spec = LoopSpec(low_priority_rate_per_s=1.0, numprocs=10)
    events: list[tuple[str, dict]] = []
    loop = ClosedLoop(spec, tmp_path, LIVE_REDIS_URL, lambda k, d: events.append((k, d)), tid=tid)
    report = loop.run()
    plans = [r for cycle in report.cycles for r in cycle]
    summary = (
        f"workers {report.workers[0][1]}→{report.workers_at(report.step_at)} at the "
        f"step, p95 wait after {report.wait_p95_s:.2f} s over "
        f"{len(report.waits_after_step_s)} jobs (low priority: "
        f"{report.low_priority_wait_p95_s:.2f} s over {len(report.low_priority_waits_s)}); plans "
        f"{[(p.get('id'), p.get('status'), p.get('current_workers'), p.get('target_workers')) for p in plans]}"
    )
    print(summary)
    assert report.stopped is None and loop.leftovers == [], (report.stopped, loop.leftovers)

    # every cycle planned from the store (no skipped or failed queue)
    assert len(report.cycles) >= 3, summary
    assert all(p["status"] in ("approved", "applied") for p in plans), summary
    # the first plan already saw the step coming (the earlier days' step, at the same phase)
    assert plans[0]["target_workers"] > spec.start_workers, summary
    # running worker processes increased BEFORE the step
    assert report.workers[0][1] == spec.start_workers
    before = report.workers_at(report.step_at - 1.0)
    assert before > spec.start_workers, summary
    first_up = next(t for t, w in report.workers if w > spec.start_workers)
    print(
        f"workers first above {spec.start_workers} {report.step_at - first_up:.0f} s before "
        f"the step; {len(report.workers)} samples; loop {report.workers[-1][0] - report.workers[0][0]:.0f} s"
    )

    store = plan_store()
    scales = store.audit_events(action="scale")
    assert scales and scales[0].plan_id is not None, summary
    # the scale-up was applied at its time: not before its execute_at (the step's window
    # minus the startup lead), within a minute of it, and before the step
    up = store.get_plan(scales[0].plan_id)
    applied = [st for st in up.steps if st.status == "applied"]
    assert applied, up
    step = applied[0]
    assert step.applied_at is not None
    assert step.execute_at <= step.applied_at <= step.execute_at + timedelta(seconds=60), step
    assert step.applied_at.timestamp() < report.step_at, step
    # plans made once the pool was scaled keep its count: no re-plan away from it
    settled = [
        p
        for p in plans
        if p["id"] is not None
        and store.get_plan(p["id"]).created_at > step.applied_at + timedelta(seconds=2)
    ]
    assert settled, summary
    assert all(p["current_workers"] == p["target_workers"] == before for p in settled), summary
    # the measured p95 wait after the step stays within the SLO, on each queue its own
    assert len(report.waits_after_step_s) > 100, summary
    assert report.wait_p95_s <= spec.slo_wait_p95_s, summary
    assert len(report.low_priority_waits_s) > 15, summary
    assert report.low_priority_wait_p95_s <= spec.low_priority_slo_wait_p95_s, summary
    # the pool was planned for both queues: every step names the queue that drives it and
    # each queue's predicted wait
    reasons = [st.reason for st in up.steps]
    assert all("drives it" in r and "_low" in r for r in reasons), reasons

    # later cycles do not fight the first: each scale moves to a new count, never back down
    # while the step is on, and never to the count it already has
    counts = [_move(e.details) for e in scales]
    assert all(a != b for a, b in counts), counts
    assert all(b > a for a, b in counts), counts  # no drift loop, no flapping
    assert len({b for _, b in counts}) == len(counts), counts  # no re-scale to the same count
    # every scale in the audit trail matches what supervisord runs
    assert counts[-1][1] == report.workers[-1][1], (counts, report.workers[-5:])
    # and every plan's approval is in the audit trail, with its actor
    approved = {e.plan_id: e.actor for e in store.audit_events(action="approved")}
    assert {p["id"] for p in plans} <= set(approved), (approved, summary)
    print(f"scales {counts}; {len(plans)} plans in {len(report.cycles)} cycles")


def _move(details: dict) -> tuple[int, int]:
    out = details.get("outcome") or details
    return int(out["from_replicas"]), int(out["to_replicas"])
