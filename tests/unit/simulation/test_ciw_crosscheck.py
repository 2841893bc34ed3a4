"""The benchmark against Ciw, short: Ciw (an independent simulator) and capplan's engine agree
on each class's wait quantile, and both find that the planned pool meets every SLO while one
worker fewer misses one (bench/bench_priority.py runs the full table)."""

from __future__ import annotations

import math

import pytest

from bench.bench_priority import CASES, pool_classes, run_capplan, run_ciw_case, verdicts
from capplan_core.queueing import evaluate_pool, required_workers_priority

WIDEN = 3.2905 / 1.959964


@pytest.mark.parametrize("name", ["strict-2-light", "rr-2"])
def test_ciw_and_capplan_agree_and_prove_the_plan(name):
    case = next(c for c in CASES if c.name == name)
    n = required_workers_priority(pool_classes(case), 1.0, discipline=case.discipline).workers
    for workers in (n, n - 1):
        ciw, _ = run_ciw_case(case, workers, reps=4, jobs=8_000, seed=5)
        ours, _ = run_capplan(case, workers, reps=4, jobs=8_000, seed=5)
        for a, b in zip(ciw, ours, strict=True):
            half = math.hypot(a.ci95[1] - a.quantile_s, b.ci95[1] - b.quantile_s) * WIDEN
            assert abs(a.quantile_s - b.quantile_s) <= half, (workers, a, b)
        check = 0 if workers == n else 1  # at n: none misses; at n - 1: one does
        assert verdicts(case, ciw)[check] and verdicts(case, ours)[check], (workers, ciw, ours)


def test_ciw_agrees_with_the_exact_formula():
    case = next(c for c in CASES if c.name == "strict-2-light")
    workers = 8
    predicted = evaluate_pool(pool_classes(case), 1.0, workers).classes
    ciw, _ = run_ciw_case(case, workers, reps=6, jobs=10_000, seed=8)
    for est, p in zip(ciw, predicted, strict=True):
        half = (est.ci95[1] - est.quantile_s) * WIDEN
        assert abs(est.quantile_s - p.wait_quantile_s) <= half, (est, p.wait_quantile_s)
