"""plan → simulate → decide as separate stages: the same plans as the one-call loop, and the
stored plan read back, re-simulated and summarised — all without a database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from capplan_adapters.store.memory import InMemoryPlanStore
from capplan_core.forecast import ForecastResult
from capplan_core.planning.decide import (
    Attempt,
    decide,
    first_attempt,
    plan_and_prove,
    propose,
    simulate_proposal,
)
from capplan_core.planning.explain import stored_step_rows
from capplan_core.planning.pool_state import QueueState
from capplan_core.planning.records import forecast_points, plan_draft, plan_summary
from capplan_core.planning.resimulate import resimulate_plan, scenario_from_stored_plan
from capplan_core.policy import ScalingPolicy

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
N = 8
STATE = QueueState(current_workers=3, current_backlog=0.0, mean_service_s=1.0)


def _policy(**scaling: object) -> ScalingPolicy:
    return ScalingPolicy.model_validate(
        {
            "name": "emails",
            "queue": "emails",
            "target": {"name": "email-worker"},
            "slo": {"wait_p95_seconds": 2},
            # the legacy sizing (q0.9 + 10 %) these loop mechanics were written on: the derived
            # default (0.99, pooled) meets 0.999 at once and never re-plans (issue 22)
            "scaling": {
                "min_workers": 1,
                "max_workers": 60,
                "max_step": 60,
                "startup_seconds": 0,
                "cooldown_seconds": 0,
                "safety_margin": 0.1,
                **scaling,
            },
            "simulation": {"replications": 40, "seed": 7},
        }
    )


def _forecast(rate_per_s: float = 4.0, spread: float = 0.1) -> ForecastResult:
    mean = np.full(N, rate_per_s)
    return ForecastResult(
        queue="emails",
        model="test",
        interval_s=900.0,
        timestamps=pd.date_range(T0, periods=N, freq="15min"),
        mean=mean,
        bounds={0.8: (mean * 0.9, mean * 1.1)},
        selection=[],
        recent_anomaly=False,
        anomalies=[],
        notes=[],
        scale=np.full(N, spread * rate_per_s),
    )


def _stepwise(policy: ScalingPolicy, fc: ForecastResult) -> tuple[object, list[int]]:
    attempt, numbers = first_attempt(fc), []
    for _ in range(policy.scaling.max_replans + 1):
        proposal = propose(policy, fc, STATE, attempt, now=T0)
        simulation = simulate_proposal(policy, fc, STATE, proposal, attempt)
        judgement = decide(policy, attempt, proposal, simulation)
        numbers.append(attempt.number)
        if judgement.next_attempt is None:
            break
        attempt = judgement.next_attempt
    return judgement.decision, numbers


@pytest.mark.parametrize(("threshold", "spread", "attempts"), [(0.5, 0.1, 1), (0.999, 0.6, 2)])
def test_stages_one_by_one_give_the_same_decision_as_the_loop(
    threshold: float, spread: float, attempts: int
) -> None:
    policy, fc = _policy(confidence_threshold=threshold), _forecast(spread=spread)
    loop = plan_and_prove(policy, fc, STATE, now=T0)
    assert loop.attempts == attempts
    staged, numbers = _stepwise(policy, fc)
    assert staged.history == loop.history  # same seeds ⇒ same attempts, same answers
    assert staged.confidence == loop.confidence
    assert [(s.execute_at, s.to_workers) for s in staged.proposal.steps] == [
        (s.execute_at, s.to_workers) for s in loop.proposal.steps
    ]
    assert numbers == list(range(1, loop.attempts + 1))


def test_decide_adds_a_worker_to_failing_windows_only_until_out_of_attempts() -> None:
    # demand far more uncertain than the planning quantile covers: the first plan fails
    policy, fc = _policy(confidence_threshold=0.999, max_replans=1), _forecast(spread=0.6)
    attempt = first_attempt(fc)
    proposal = propose(policy, fc, STATE, attempt, now=T0)
    sim = simulate_proposal(policy, fc, STATE, proposal, attempt)
    failing = np.asarray(sim.window_failure_rate) > 0.02
    judged = decide(policy, attempt, proposal, sim)
    assert sim.slo_achievement_rate < 0.999
    assert judged.next_attempt is not None and judged.next_attempt.number == 2
    expected = np.where(failing if failing.any() else True, 1, 0)
    assert list(judged.next_attempt.extra_workers) == expected.tolist()
    last = decide(policy, Attempt(2, judged.next_attempt.extra_workers), proposal, sim)
    assert last.final and last.decision.attempts == 2
    assert last.decision.reasons[-1].startswith("simulated confidence")


def test_stored_plan_round_trips_to_the_same_summary_and_resimulates() -> None:
    policy, fc = _policy(confidence_threshold=0.5), _forecast()
    decision = plan_and_prove(policy, fc, STATE, now=T0)
    store = InMemoryPlanStore()
    store.apply_policies([policy], actor="test")
    pid = store.create_plan(plan_draft(policy, decision, fc, STATE, as_of=T0, quality={}))
    # the draft carries its forecast points: stored with the plan, once
    assert store.forecast_points(pid) == forecast_points(policy, fc)
    plan = store.get_plan(pid)

    out = plan_summary(plan)
    assert out["policy"] == "emails" and out["status"] == "proposed"
    assert out["simulation"]["p95_wait_s"] == pytest.approx(decision.simulation.p95_wait_s)
    assert out["target_workers"] == decision.proposal.target_workers
    rows = stored_step_rows(plan)
    assert [r["to_workers"] for r in rows] == [s.to_workers for s in decision.proposal.steps]

    pts = store.forecast_points(pid)
    assert [p.confidence_upper for p in pts] == pytest.approx([4.4] * N)
    scenario = scenario_from_stored_plan(plan, policy, pts, n_paths=5, rng=np.random.default_rng(0))
    assert scenario.initial_workers == 3 and scenario.horizon_s == 900.0 * N
    assert scenario.service_kind == "exponential"
    again = resimulate_plan(store, pid, replications=20, seed=3)
    assert again == resimulate_plan(store, pid, replications=20, seed=3)  # same seed, same
    assert again["queue"] == "emails" and 0.0 <= again["slo_achievement_rate"] <= 1.0


def test_a_plan_without_stored_forecast_cannot_be_resimulated() -> None:
    policy, fc = _policy(confidence_threshold=0.5), _forecast()
    store = InMemoryPlanStore()
    store.apply_policies([policy], actor="test")
    draft = plan_draft(
        policy, plan_and_prove(policy, fc, STATE, now=T0), fc, STATE, as_of=T0, quality={}
    )
    pid = store.create_plan(replace(draft, forecast=()))
    with pytest.raises(ValueError, match=f"plan {pid} has no stored forecast"):
        resimulate_plan(store, pid, replications=5, seed=0)
