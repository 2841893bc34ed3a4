"""Queueing models for sizing worker pools: Erlang B/C, M/M/c metrics, Allen–Cunneen, sizing."""

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
from capplan_core.queueing.sizing import SizingResult, SloTerms, failing_terms, required_workers

__all__ = [
    "SizingResult", "SloTerms", "erlang_b", "erlang_c", "failing_terms", "is_stable",
    "mean_queue_length", "mean_wait_s", "prob_wait_exceeds", "required_workers", "utilization",
    "wait_probability", "wait_quantile_s",
]
