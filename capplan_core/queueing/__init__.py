"""Queueing models for sizing worker pools: Erlang B/C, M/M/c metrics, Allen–Cunneen, sizing;
shared pools serving several classes (priority, round robin, weighted)."""

from capplan_core.queueing.erlang import (
    erlang_b,
    erlang_c,
    is_stable,
    mean_queue_length,
    mean_wait_s,
    prob_wait_exceeds,
    utilization,
    wait_probability,
    wait_quantile_s,
)
from capplan_core.queueing.pool_sizing import (
    ClassResult,
    PoolClass,
    PoolSizingResult,
    evaluate_pool,
    required_workers_priority,
)
from capplan_core.queueing.sizing import SizingResult, SloTerms, failing_terms, required_workers

__all__ = [
    "ClassResult",
    "PoolClass",
    "PoolSizingResult",
    "SizingResult",
    "SloTerms",
    "erlang_b",
    "erlang_c",
    "evaluate_pool",
    "failing_terms",
    "is_stable",
    "mean_queue_length",
    "mean_wait_s",
    "prob_wait_exceeds",
    "required_workers",
    "required_workers_priority",
    "utilization",
    "wait_probability",
    "wait_quantile_s",
]
