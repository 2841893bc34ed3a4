"""Shared pools sized by capplan, checked by two simulators: Ciw (independent) and capplan's.

Run: ``nice -n 10 .venv/bin/python bench/bench_priority.py [--quick] [--cases a,b] [--json F]``

For each case (2–3 classes, strict, round-robin or weighted order, varied loads, SLOs and
service times) the planned count N is ``required_workers_priority``'s. Both simulators run the
stationary pool at N and at N − 1 (``REPLICATIONS`` independent replications, a warm-up left
out) and estimate each class's wait quantile at its SLO quantile with a 95% t interval over
replications. The case passes when, in both simulators,
- at N no class misses its SLO beyond the interval (interval's low end <= the SLO wait), and
- at N − 1 some class misses within the interval (interval's high end > the SLO wait).
It prints a markdown table (docs/shared-pools.md) and Ciw's time over capplan's fast engine's
for the same replications, measured in this process (the engine compiled beforehand).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from bench.ciw_pool import CiwClass, run_ciw
from capplan_core.queueing import PoolClass, SloTerms, evaluate_pool, required_workers_priority
from capplan_core.simulation import JobClass, class_scenario, simulate

REPLICATIONS = 10
JOBS_PER_REPLICATION = 40_000
WARMUP_SHARE = 0.1


@dataclass(frozen=True)
class CaseClass:
    name: str
    rate_per_s: float
    wait_s: float
    quantile: float = 0.95
    mean_service_s: float = 1.0
    service_scv: float = 1.0
    weight: float = 1.0


@dataclass(frozen=True)
class Case:
    name: str
    discipline: str
    classes: tuple[CaseClass, ...]


CASES = (
    Case("strict-2-light", "strict", (CaseClass("high", 2.0, 0.5), CaseClass("low", 4.0, 4.0))),
    Case(
        "strict-2-busy",
        "strict",
        (
            CaseClass("high", 12.0, 0.1, mean_service_s=2.0),
            CaseClass("low", 24.0, 2.0, 0.99, mean_service_s=2.0),
        ),
    ),
    Case(
        "strict-3",
        "strict",
        (
            CaseClass("high", 1.0, 0.5, mean_service_s=2.0),
            CaseClass("default", 3.0, 5.0, mean_service_s=2.0),
            CaseClass("low", 1.5, 30.0, 0.99, mean_service_s=2.0),
        ),
    ),
    Case(
        "strict-unequal",
        "strict",
        (
            CaseClass("high", 6.0, 0.3, mean_service_s=0.5),
            CaseClass("low", 2.0, 10.0, mean_service_s=3.0),
        ),
    ),
    Case(
        "strict-lognormal",
        "strict",
        (
            CaseClass("high", 8.0, 0.5, service_scv=2.0),
            CaseClass("low", 10.0, 5.0, service_scv=2.0),
        ),
    ),
    Case("rr-2", "round_robin", (CaseClass("a", 3.0, 1.0), CaseClass("b", 9.0, 2.0))),
    Case(
        "rr-3",
        "round_robin",
        (
            CaseClass("a", 2.0, 1.0, 0.9),
            CaseClass("b", 3.0, 2.0, 0.9),
            CaseClass("c", 4.0, 2.0, 0.9),
        ),
    ),
    Case(
        "rr-unequal",
        "round_robin",
        (
            CaseClass("a", 4.0, 2.0, mean_service_s=0.5),
            CaseClass("b", 2.0, 5.0, mean_service_s=2.0),
        ),
    ),
    Case(
        "weighted-2",
        "weighted",
        (CaseClass("a", 2.0, 0.5, weight=3.0), CaseClass("b", 6.0, 2.0, weight=1.0)),
    ),
)


@dataclass(frozen=True)
class ClassEstimate:
    quantile_s: float
    ci95: tuple[float, float]


def pool_classes(case: Case) -> list[PoolClass]:
    return [
        PoolClass(
            c.name,
            c.rate_per_s,
            SloTerms(wait_s=c.wait_s, wait_quantile=c.quantile),
            mean_service_s=c.mean_service_s,
            service_scv=c.service_scv,
            weight=c.weight,
        )
        for c in case.classes
    ]


def horizon_s(case: Case, jobs: int) -> tuple[float, float]:
    """(warm-up, end) so that a replication sees about ``jobs`` jobs after the warm-up."""
    measured = jobs / sum(c.rate_per_s for c in case.classes)
    return WARMUP_SHARE * measured, (1.0 + WARMUP_SHARE) * measured


def _t_ci(values: np.ndarray) -> ClassEstimate:
    point = float(values.mean())
    half = float(sps.t.ppf(0.975, values.size - 1) * values.std(ddof=1) / math.sqrt(values.size))
    return ClassEstimate(point, (point - half, point + half))


def run_capplan(
    case: Case, workers: int, reps: int, jobs: int, seed: int
) -> tuple[list[ClassEstimate], float]:
    warm, end = horizon_s(case, jobs)
    sc = class_scenario(
        [
            JobClass(
                c.name,
                np.array([c.rate_per_s]),
                mean_service_s=c.mean_service_s,
                service_scv=c.service_scv,
                service_kind="exponential" if c.service_scv == 1.0 else "lognormal",
                slo_wait_s=c.wait_s,
                slo_wait_quantile=c.quantile,
                weight=c.weight,
            )
            for c in case.classes
        ],
        discipline=case.discipline,
        horizon_s=end,
        window_s=end,
        initial_workers=workers,
        warmup_s=warm,
    )
    t0 = time.perf_counter()
    s = simulate(sc, replications=reps, seed=seed, engine="fast")
    took = time.perf_counter() - t0
    return [
        ClassEstimate(c.wait_quantile_s, c.wait_quantile_s_ci95 or (math.nan, math.nan))
        for c in s.classes
    ], took


def run_ciw_case(
    case: Case, workers: int, reps: int, jobs: int, seed: int
) -> tuple[list[ClassEstimate], float]:
    warm, end = horizon_s(case, jobs)
    classes = [
        CiwClass(c.rate_per_s, c.mean_service_s, c.service_scv, c.weight) for c in case.classes
    ]
    q = np.zeros((reps, len(case.classes)))
    t0 = time.perf_counter()
    for r in range(reps):
        waits = run_ciw(
            classes,
            workers,
            case.discipline,
            warmup_s=warm,
            end_s=end,
            cut_s=2.0 * end,
            seed=seed + r,
        )
        q[r] = [
            np.quantile(w, c.quantile) if w.size else 0.0
            for w, c in zip(waits, case.classes, strict=True)
        ]
    took = time.perf_counter() - t0
    return [_t_ci(q[:, k]) for k in range(len(case.classes))], took


def verdicts(case: Case, est: list[ClassEstimate]) -> tuple[bool, bool]:
    """(no class misses beyond the CI, some class misses within the CI)."""
    meets = all(e.ci95[0] <= c.wait_s for e, c in zip(est, case.classes, strict=True))
    misses = any(e.ci95[1] > c.wait_s for e, c in zip(est, case.classes, strict=True))
    return meets, misses


@dataclass
class CaseResult:
    case: Case
    workers: int
    model: str
    predicted: dict[int, list[float]]
    ciw: dict[int, list[ClassEstimate]]
    capplan: dict[int, list[ClassEstimate]]
    ciw_s: float = 0.0
    capplan_s: float = 0.0

    def passed(self, sim: str) -> bool:
        runs = self.ciw if sim == "ciw" else self.capplan
        return (
            verdicts(self.case, runs[self.workers])[0]
            and verdicts(self.case, runs[self.workers - 1])[1]
        )


def run_case(case: Case, reps: int, jobs: int, seed: int) -> CaseResult:
    plan = required_workers_priority(pool_classes(case), 1.0, discipline=case.discipline)
    n = plan.workers
    res = CaseResult(case, n, plan.model, {}, {}, {})
    for c in (n, n - 1):
        at = evaluate_pool(pool_classes(case), 1.0, c, discipline=case.discipline)
        res.predicted[c] = [x.wait_quantile_s for x in at.classes]
        res.ciw[c], took = run_ciw_case(case, c, reps, jobs, seed)
        res.ciw_s += took
        res.capplan[c], took = run_capplan(case, c, reps, jobs, seed)
        res.capplan_s += took
    return res


def _fmt(e: ClassEstimate) -> str:
    return f"{e.quantile_s:.3g} [{e.ci95[0]:.3g}, {e.ci95[1]:.3g}]"


def table(results: list[CaseResult]) -> str:
    """One markdown row per case, class and count."""
    rows = [
        "| case | order, model | class: rate/s, service s (SCV), SLO | workers | "
        "predicted | Ciw: quantile [95% CI] | capplan: quantile [95% CI] | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for c in (r.workers, r.workers - 1):
            for k, cc in enumerate(r.case.classes):
                ok_ciw = verdicts(r.case, r.ciw[c])
                ok_cap = verdicts(r.case, r.capplan[c])
                verdict = ""
                if k == 0:
                    good = (
                        (ok_ciw[0] and ok_cap[0]) if c == r.workers else (ok_ciw[1] and ok_cap[1])
                    )
                    verdict = (
                        ("all meet" if c == r.workers else "one misses") if good else ("**FAILS**")
                    )
                rows.append(
                    f"| {r.case.name if k == 0 and c == r.workers else ''} "
                    f"| {r.case.discipline + ', ' + r.model if k == 0 and c == r.workers else ''}"
                    f" | {cc.name}: {cc.rate_per_s:g}, {cc.mean_service_s:g} "
                    f"({cc.service_scv:g}), p{cc.quantile * 100:g} <= {cc.wait_s:g} s "
                    f"| {c if k == 0 else ''} | {r.predicted[c][k]:.3g} "
                    f"| {_fmt(r.ciw[c][k])} | {_fmt(r.capplan[c][k])} | {verdict} |"
                )
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="4 replications of 8,000 jobs")
    p.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--json", default="", help="also write the results to this file")
    a = p.parse_args(argv)
    reps, jobs = (4, 8_000) if a.quick else (REPLICATIONS, JOBS_PER_REPLICATION)
    chosen = [c for c in CASES if not a.cases or c.name in a.cases.split(",")]
    run_capplan(CASES[0], 2, 2, 200, 0)  # compile the fast engine before timing it
    results = []
    for case in chosen:
        results.append(run_case(case, reps, jobs, a.seed))
        r = results[-1]
        print(
            f"{case.name}: N={r.workers} ciw {'ok' if r.passed('ciw') else 'FAIL'} "
            f"capplan {'ok' if r.passed('capplan') else 'FAIL'} "
            f"(Ciw {r.ciw_s:.1f} s, capplan {r.capplan_s:.2f} s)",
            file=sys.stderr,
        )
    print(table(results))
    ciw_s, cap_s = sum(r.ciw_s for r in results), sum(r.capplan_s for r in results)
    passed = sum(r.passed("ciw") and r.passed("capplan") for r in results)
    print(
        f"\n{passed}/{len(results)} cases pass in both simulators; {reps} replications of "
        f"~{jobs:,} jobs per count; Ciw {ciw_s:.1f} s, capplan fast engine {cap_s:.2f} s: "
        f"capplan's engine takes {cap_s / ciw_s:.4f} of Ciw's time "
        f"({ciw_s / cap_s:.0f}x faster)"
    )
    if a.json:
        with open(a.json, "w") as f:
            json.dump(
                [
                    {
                        "case": r.case.name,
                        "workers": r.workers,
                        "model": r.model,
                        "ciw_s": r.ciw_s,
                        "capplan_s": r.capplan_s,
                        "passed": r.passed("ciw") and r.passed("capplan"),
                        "ciw": {c: [e.__dict__ for e in v] for c, v in r.ciw.items()},
                        "capplan": {c: [e.__dict__ for e in v] for c, v in r.capplan.items()},
                        "predicted": r.predicted,
                    }
                    for r in results
                ],
                f,
                indent=1,
            )
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
