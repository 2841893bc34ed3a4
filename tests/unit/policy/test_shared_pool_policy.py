"""A policy for a pool that serves several queues (issue 23, docs/shared-pools.md): the
``shared`` section lists the queues in service order, each with its own SLO, under a
discipline; every mistake is refused naming the policy, the field and the value; a queue
belongs to one policy, shared or not; single-queue policies are unchanged. A pool one of
whose queues cannot be planned is skipped naming that queue, never planned without it."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from capplan_core.planning.policy_versions import check_policy_set
from capplan_core.policy import PolicyError, ScalingPolicy, parse_policies


def _pool(**shared_over) -> dict:
    shared = {
        "discipline": "strict",
        "queues": [
            {"queue": "high"},
            {"queue": "low", "slo": {"wait_p95_seconds": 300}},
        ],
    }
    shared.update(shared_over)
    return {
        "name": "mixed",
        "queue": "high",
        "target": {"name": "mixed-worker"},
        "slo": {"wait_p95_seconds": 5},
        "shared": shared,
    }


def _one(doc: dict) -> ScalingPolicy:
    return parse_policies({"policies": [doc]})[0]


def test_a_shared_pool_lists_its_queues_in_order_each_with_its_slo() -> None:
    p = _one(_pool())
    assert p.served_queues == ["high", "low"]
    assert p.slo_of("high").wait_seconds == 5  # the policy's slo, for its queue
    assert p.slo_of("low").wait_seconds == 300
    with pytest.raises(KeyError, match="does not serve queue 'other'"):
        p.slo_of("other")
    weighted = _one(
        _pool(discipline="weighted", queues=[{"queue": "high", "weight": 3}, {"queue": "low"}])
    )
    assert [c.weight for c in weighted.shared.queues] == [3, None]


def test_a_single_queue_policy_is_unchanged() -> None:
    doc = _pool()
    del doc["shared"]
    p = _one(doc)
    assert p.shared is None and p.served_queues == ["high"] and p.slo_of("high").wait_seconds == 5


@pytest.mark.parametrize(
    ("shared", "needle"),
    [
        ({"queues": [{"queue": "low"}, {"queue": "bulk"}]}, "must list the policy's queue 'high'"),
        ({"queues": [{"queue": "high"}]}, "shared.queues: List should have at least 2 items"),
        (
            {"queues": [{"queue": "high"}, {"queue": "high"}]},
            "queues lists ['high'] more than once",
        ),
        (
            {"queues": [{"queue": "high", "weight": 2}, {"queue": "low"}]},
            "only discipline 'weighted' uses",
        ),
        ({"discipline": "lifo"}, "shared.discipline"),
        (
            {"queues": [{"queue": "high"}, {"queue": "low", "slo": {}}]},
            "queue 'low': slo needs at least one term",
        ),
        (
            {"queues": [{"queue": "high"}, {"queue": "emails:hb:x"}]},
            "would share Redis keys with the worker heartbeats",
        ),
        (
            {"queues": [{"queue": "high"}, {"queue": "low", "weight": -1}]},
            "shared.queues.1.weight",
        ),
        ({"queues": [{"queue": "high"}, {"queue": "low", "nice": 1}]}, "shared.queues.1.nice"),
    ],
)
def test_a_bad_shared_pool_is_refused_naming_the_field(shared: dict, needle: str) -> None:
    with pytest.raises(PolicyError) as err:
        _one(_pool(**shared))
    assert "policy 'mixed'" in str(err.value) and needle in str(err.value), str(err.value)


def test_a_queue_belongs_to_one_policy_shared_or_not() -> None:
    alone = {
        "name": "low-alone",
        "queue": "low",
        "target": {"name": "low-worker"},
        "slo": {"wait_p95_seconds": 60},
    }
    with pytest.raises(PolicyError, match="policies 'mixed' and 'low-alone' share queue 'low'"):
        parse_policies({"policies": [_pool(), alone]})
    # the same across what is stored and what is applied
    with pytest.raises(PolicyError, match="share queue 'low'"):
        check_policy_set([_one(alone)], [_one(_pool())])


def test_a_pool_missing_one_queues_metrics_is_skipped_naming_it_never_planned_without_it():
    # planned without one of its queues, the pool would starve that queue
    from capplan_core.planning.shared_pipeline import plan_shared, queue_view

    now = datetime(2026, 12, 7, tzinfo=UTC)
    policy = _one(_pool())
    view = queue_view(policy, "low")
    assert (view.queue, view.shared, view.slo.wait_seconds) == ("low", None, 300)
    out = plan_shared(policy, lambda p: pd.DataFrame(), now)
    assert out.status == "skipped" and out.decision is None
    assert out.reason is not None and out.reason.startswith("queue high of the shared pool:")


def test_collect_metrics_reads_every_queue_of_a_shared_pool() -> None:
    # the history each queue's forecast will need accrues from the first collection on
    from capplan_app.bootstrap import metric_sources

    doc = _pool()
    doc["source"] = {"kind": "rq", "redis_url": "redis://127.0.0.1:6379/15"}
    sources, problems = metric_sources([_one(doc)])
    assert problems == [] and [s.queues for s in sources] == [["high", "low"]]
