"""plan_many: the per-queue pipeline over a batch, in one process, without Prefect.

Each queue's outcome is the one its stages give one by one (same functions, same seeds), a
failing queue is named with its stage and never touches the others, and progress is reported
after every queue.
"""

from __future__ import annotations

import pandas as pd
import pytest

from bench.synthetic_queues import END, policy, queue_rows
from capplan_core.planning.batch import chunk_size_for, chunked, plan_many
from capplan_core.planning.decide import plan_and_prove
from capplan_core.planning.pipeline import forecast as forecast_for
from capplan_core.planning.pool_state import pool_state
from capplan_core.quality import assess

NOW = END.to_pydatetime()


@pytest.fixture(scope="module")
def rows() -> dict[str, pd.DataFrame]:
    return {policy(i).queue: queue_rows(i) for i in range(3)}


def test_each_outcome_is_the_stage_by_stage_answer(rows):
    pols = [policy(i) for i in range(2)]
    outcomes = list(plan_many(pols, lambda p: rows[p.queue], NOW, from_file=True))
    assert [o.status for o in outcomes] == ["planned", "planned"]
    for p, out in zip(pols, outcomes, strict=True):
        a = assess(rows[p.queue], p, now=NOW)
        fc = forecast_for(a, p)
        assert not isinstance(fc, str)
        alone = plan_and_prove(
            p, fc, pool_state(a.clean), now=NOW, data_quality_warning=bool(a.quality.warnings)
        )
        assert out.decision is not None
        assert out.decision.proposal.target_workers == alone.proposal.target_workers
        assert out.decision.proposal.schedule == alone.proposal.schedule
        assert out.decision.confidence == alone.confidence
        assert out.decision.simulation.p95_wait_s == alone.simulation.p95_wait_s
        assert set(out.stage_seconds) == {
            "collect",
            "clean",
            "forecast",
            "pool-state",
            "plan-simulate-decide",
        }


def test_a_failing_queue_is_named_and_the_others_are_planned(rows):
    pols = [policy(i) for i in range(3)]
    broken = pols[1].queue

    def read(p):
        if p.queue == broken:
            raise ConnectionError("metrics source down")
        return rows[p.queue]

    def live(p, measured):
        if p.queue == pols[2].queue:
            raise RuntimeError("scaler says no")
        return measured + 1, "test scaler"

    seen: list[tuple[int, int, str]] = []
    outcomes = list(
        plan_many(
            pols, read, NOW, live_count=live, progress=lambda i, n, o: seen.append((i, n, o.queue))
        )
    )
    assert [o.status for o in outcomes] == ["planned", "failed", "failed"]
    assert outcomes[1].failed_stage == "collect"
    assert outcomes[1].error == "ConnectionError: metrics source down"
    assert outcomes[2].failed_stage == "pool-state"
    assert outcomes[2].error == "RuntimeError: scaler says no"
    first = outcomes[0]
    assert first.state is not None and first.state.replica_source == "test scaler"
    assert first.state.current_workers == first.state.measured_workers + 1
    assert seen == [(1, 3, pols[0].queue), (2, 3, pols[1].queue), (3, 3, pols[2].queue)]


def test_no_rows_is_a_skip_from_the_store_and_a_quality_failure_from_a_file(rows):
    p = policy(0)
    empty = rows[p.queue].iloc[:0]
    [store] = plan_many(
        [p], lambda _: empty, NOW, no_rows_reason=lambda pol, now: f"nothing for {pol.queue}"
    )
    assert (store.status, store.reason) == ("skipped", "nothing for q0000")
    [file] = plan_many([p], lambda _: empty, NOW, from_file=True)
    assert file.status == "skipped" and file.assessment is not None
    assert not file.assessment.plannable


def test_chunks_cover_every_queue_once():
    pols = [policy(i) for i in range(7)]
    assert [len(c) for c in chunked(pols, 3)] == [3, 3, 1]
    assert [p.queue for c in chunked(pols, 3) for p in c] == [p.queue for p in pols]
    assert chunk_size_for(1000, max_chunk=25, workers=2) == 25
    assert chunk_size_for(20, max_chunk=25, workers=2) == 10
    assert chunk_size_for(1, workers=4) == 1
    with pytest.raises(ValueError, match="chunk size must be >= 1"):
        chunked(pols, 0)
