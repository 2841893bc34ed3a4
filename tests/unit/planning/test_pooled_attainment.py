"""Pooled attainment (issue 15): ``slo.attainment_mode: pooled`` spends ``target_attainment``
as a risk budget over the horizon's windows instead of sizing each to that quantile.

The SLO here is ``max_utilization: 0.5`` with 1-s jobs, so c workers carry λ_max(c) = c/2
jobs/s exactly and every probability below is worked out by hand from the quantiles."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

import capplan_core.planning.planner as planner_mod
from capplan_core.forecast import ForecastResult
from capplan_core.planning import defaults
from capplan_core.planning.decide import first_attempt, propose
from capplan_core.planning.pool_state import QueueState
from capplan_core.planning.pooled_sizing import (
    DemandDistribution,
    distribution_from_forecast,
    expected_attainment,
    pooled_allocation,
    window_floor,
)
from capplan_core.policy import PolicyError, parse_policies
from capplan_core.queueing.sizing import SloTerms, required_workers
from tests.unit.planning.planner_helpers import plan, policy

TERMS = SloTerms(wait_s=None, max_utilization=0.5)
# every window: P(demand <= 1.0) = 0.5, <= 1.49: 0.9, <= 1.9: 0.99, <= 1.99: 0.999
LEVELS = np.array([0.5, 0.9, 0.99, 0.999])
VALUES = np.array([1.0, 1.49, 1.9, 1.99])


def _dist(n: int) -> DemandDistribution:
    return DemandDistribution(LEVELS, np.repeat(VALUES[:, None], n, axis=1))


def test_window_floor() -> None:
    assert window_floor(0.99) == pytest.approx(0.90)
    assert window_floor(0.999) == pytest.approx(0.99)
    assert window_floor(0.9) == 0.5


def test_cdf_interpolates_the_quantiles() -> None:
    d = _dist(1)
    assert d.cdf(0, 0.5) == 0.0  # below the lowest quantile
    assert d.cdf(0, 1.0) == pytest.approx(0.5)
    assert d.cdf(0, 1.245) == pytest.approx(0.7)  # halfway from 1.0 to 1.49
    assert d.cdf(0, 5.0) == pytest.approx(0.999)  # the top level, never 1
    assert d.quantile(0, 0.99) == pytest.approx(1.9)


def test_pooled_needs_fewer_workers_than_per_window_sizing_for_the_target() -> None:
    n = 20
    d = _dist(n)
    per_window = [required_workers(d.quantile(i, 0.99), 1.0, TERMS).workers for i in range(n)]
    assert per_window == [4] * n  # 1.9 jobs/s / 0.5 -> 4
    a = pooled_allocation(
        d,
        [TERMS] * n,
        mean_service_s=1.0,
        service_scv=1.0,
        target_attainment=0.99,
        min_workers=1,
        max_workers=100,
    )
    # 3 workers carry 1.5 jobs/s: P = 0.9 + 0.01/0.41 * 0.09 = 0.90220; 4 carry 2.0: 0.999.
    # The budget 20 x (0.999 - 0.99) = 0.18 pays for one window at 3 (0.097), not two.
    assert sorted(a.workers) == [3] + [4] * 19
    assert sum(a.workers) == 79 < sum(per_window) == 80
    p3 = 0.9 + 0.01 / 0.41 * 0.09
    assert a.expected_attainment == pytest.approx((19 * 0.999 + p3) / 20, abs=1e-6)
    assert a.expected_attainment >= 0.99
    assert min(a.met_probability) >= window_floor(0.99)
    per_window_attainment = expected_attainment(
        d, per_window, [TERMS] * n, mean_service_s=1.0, service_scv=1.0
    )
    assert per_window_attainment == pytest.approx(0.999)
    # at the same expected attainment as per-window sizing, pooled costs the same 80
    same = pooled_allocation(
        d,
        [TERMS] * n,
        mean_service_s=1.0,
        service_scv=1.0,
        target_attainment=0.999 - 1e-9,
        min_workers=1,
        max_workers=100,
    )
    assert sum(same.workers) == 80


def test_no_window_is_left_below_its_floor() -> None:
    # a big budget (target 0.95, floor 0.5) may not push a window under P = 0.5: 2 workers
    # carry 1.0 jobs/s, exactly the median
    n = 10
    d = _dist(n)
    a = pooled_allocation(
        d,
        [TERMS] * n,
        mean_service_s=1.0,
        service_scv=1.0,
        target_attainment=0.95,
        min_workers=1,
        max_workers=100,
    )
    assert min(a.workers) >= 2
    assert min(a.met_probability) >= 0.5 - 1e-9
    assert a.expected_attainment >= 0.95


def test_a_window_that_cannot_reach_its_floor_is_reported_capped() -> None:
    pol = policy(
        slo={"max_utilization": 0.5, "target_attainment": 0.99, "attainment_mode": "pooled"},
        max_workers=3,
        safety_margin=0.0,
    )
    p = plan(pol, [1.9, 1.9], current=3, demand_quantile=0.99, demand_distribution=_dist(2))
    assert p.slo_achievable is False
    assert "max_workers 3" in p.reasons[0]


def _forecast(mean: list[float], scale: float) -> ForecastResult:
    t0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
    m = np.asarray(mean, dtype=float)
    return ForecastResult(
        queue="emails",
        model="test",
        interval_s=900.0,
        timestamps=pd.date_range(t0, periods=len(m), freq="15min"),
        mean=m,
        bounds={0.8: (m * 0.9, m * 1.1)},
        selection=[],
        recent_anomaly=False,
        anomalies=[],
        notes=[],
        scale=np.full(len(m), scale),
    )


def test_distribution_from_forecast_agrees_with_its_quantiles() -> None:
    fc = _forecast([10.0, 12.0, 15.0], 1.5)
    d = distribution_from_forecast(fc)
    for q in (0.5, 0.9, 0.99):
        for i in range(3):
            assert d.cdf(i, float(fc.quantile(q)[i])) == pytest.approx(q, abs=1e-9)


def _pooled_policy(**scaling: object):  # type: ignore[no-untyped-def]
    return policy(
        slo={"max_utilization": 0.5, "target_attainment": 0.99, "attainment_mode": "pooled"},
        **scaling,
    )


DEMAND = [6.0, 6.5, 7.2, 8.1, 9.0, 9.4, 9.0, 8.1, 7.2, 6.5, 6.0, 5.6]


def _plans(**scaling: object):  # type: ignore[no-untyped-def]
    fc = _forecast(DEMAND, 0.6)
    dist = distribution_from_forecast(fc)
    q = fc.quantile(0.99)
    kw = {"demand_quantile": 0.99, "demand_distribution": dist}
    per = plan(
        policy(
            slo={
                "max_utilization": 0.5,
                "target_attainment": 0.99,
                "attainment_mode": "per_window",
            },
            **scaling,
        ),
        list(q),
        current=15,
        **kw,
    )
    pooled = plan(_pooled_policy(**scaling), list(q), current=15, **kw)
    return per, pooled, dist


def _attainment(p, dist) -> float:  # type: ignore[no-untyped-def]
    counts = [n for _, n in p.schedule]
    return expected_attainment(
        dist, counts, [TERMS] * len(counts), mean_service_s=1.0, service_scv=1.0
    )


def test_pooled_plan_is_cheaper_at_the_target_and_explains_itself() -> None:
    per, pooled, dist = _plans()
    assert pooled.cost["plan_worker_hours"] < per.cost["plan_worker_hours"]
    assert _attainment(pooled, dist) >= 0.99
    assert _attainment(per, dist) > _attainment(pooled, dist)
    w = pooled.windows[0]
    assert w["attainment_mode"] == "pooled" and w["met_probability"] >= 0.9
    assert per.windows[0]["attainment_mode"] == "per_window"
    assert per.windows[0]["met_probability"] is None
    assert any("pooled risk budget (P(met)" in s.reason for s in pooled.steps)


def test_pooled_spends_the_surplus_the_scheduler_holds(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # with a 1-h dwell and 4-window hysteresis the scheduler holds levels above the needs;
    # counting those held workers lets the budget take its risk elsewhere
    calm = {"min_dwell_seconds": 3600, "scale_down_windows": 4}
    _, held, dist = _plans(**calm)
    monkeypatch.setattr(planner_mod, "POOLED_BISECTIONS", 0)
    _, plain, _ = _plans(**calm)
    assert _attainment(plain, dist) > _attainment(held, dist) >= 0.99
    assert held.cost["plan_worker_hours"] < plain.cost["plan_worker_hours"]


def test_pooled_without_a_distribution_sizes_per_window() -> None:
    q = list(_forecast(DEMAND, 0.6).quantile(0.99))
    a = plan(_pooled_policy(), q, current=15, demand_quantile=0.99)
    b = plan(
        policy(slo={"max_utilization": 0.5, "target_attainment": 0.99}),
        q,
        current=15,
        demand_quantile=0.99,
    )
    assert a.schedule == b.schedule
    assert a.windows[0]["attainment_mode"] == "per_window"


def test_production_propose_pools_when_the_policy_says_so() -> None:
    fc = _forecast(DEMAND, 0.6)
    state = QueueState(current_workers=15, current_backlog=0.0, mean_service_s=1.0)
    pol = _pooled_policy()
    p = propose(pol, fc, state, first_attempt(fc), now=fc.timestamps[0].to_pydatetime())
    assert {w["attainment_mode"] for w in p.windows} == {"pooled"}
    per = propose(
        policy(
            slo={"max_utilization": 0.5, "target_attainment": 0.99, "attainment_mode": "per_window"}
        ),
        fc,
        state,
        first_attempt(fc),
        now=fc.timestamps[0].to_pydatetime(),
    )
    assert sum(n for _, n in p.schedule) < sum(n for _, n in per.schedule)


def _doc(**slo: object) -> dict:  # type: ignore[type-arg]
    return {
        "policies": [
            {
                "name": "emails",
                "queue": "emails",
                "target": {"name": "w"},
                "slo": {"wait_p95_seconds": 30, **slo},
            }
        ]
    }


def test_attainment_mode_default_and_values() -> None:
    # issue 22: unset, it is derived: pooled wherever there is a target (set or derived)
    bare = parse_policies(_doc())[0]
    assert bare.slo.attainment_mode is None and defaults.attainment_mode(bare) == "pooled"
    pol = parse_policies(_doc(target_attainment=0.99, attainment_mode="pooled"))[0]
    assert pol.slo.attainment_mode == "pooled"


def test_attainment_mode_rejects_an_unknown_value_naming_field_and_value() -> None:
    with pytest.raises(PolicyError) as err:
        parse_policies(_doc(target_attainment=0.99, attainment_mode="global"))
    msg = str(err.value)
    assert "policy 'emails': slo.attainment_mode" in msg
    assert "'global'" in msg and "per_window" in msg and "pooled" in msg


def test_pooled_without_target_attainment_is_refused() -> None:
    # without a target the derived one is pooled (issue 22); refused only on the legacy rule
    assert parse_policies(_doc(attainment_mode="pooled"))[0].slo.target_attainment is None
    doc = _doc(attainment_mode="pooled")
    doc["policies"][0]["scaling"] = {"safety_margin": 0.1}
    with pytest.raises(PolicyError) as err:
        parse_policies(doc)
    msg = str(err.value)
    assert "policy 'emails'" in msg
    assert "attainment_mode 'pooled' needs slo.target_attainment" in msg


def test_what_if_margin_override_of_a_pooled_policy_goes_back_to_per_window() -> None:
    from capplan_core.whatif.scenario import changed_policy, parse_scenario

    pol = parse_policies(_doc(target_attainment=0.99, attainment_mode="pooled"))[0]
    changed = changed_policy(pol, parse_scenario({"policy": "emails", "safety_margin": 0.3}))
    assert changed.slo.target_attainment is None
    assert changed.slo.attainment_mode == "per_window"


def test_uncertain_windows_are_planned_at_least_at_the_target() -> None:
    fc = _forecast(DEMAND, 0.6)
    plain = distribution_from_forecast(fc)
    unsure = np.zeros(len(DEMAND), dtype=bool)
    unsure[[0, 5]] = True
    marked = distribution_from_forecast(replace(fc, uncertain=unsure))
    kw = {
        "mean_service_s": 1.0,
        "service_scv": 1.0,
        "target_attainment": 0.99,
        "min_workers": 1,
        "max_workers": 100,
    }
    a = pooled_allocation(plain, [TERMS] * len(DEMAND), **kw)
    b = pooled_allocation(marked, [TERMS] * len(DEMAND), **kw)
    assert min(a.met_probability) < 0.99
    assert b.met_probability[0] >= 0.99 - 1e-9 and b.met_probability[5] >= 0.99 - 1e-9
    assert b.expected_attainment >= 0.99 - 1e-9
