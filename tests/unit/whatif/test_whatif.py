"""What-if: scenarios change demand and policy as asked, and bad values are named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capplan_core.planning.planner import PlanInput, plan_capacity
from capplan_core.planning.window_sizing import sizing_quantile
from capplan_core.whatif import WhatIfError, parse_scenario, run_what_if, what_if_inputs
from tests.unit.backtest.synthetic import T0, constant, policy, rows

AS_OF = T0 + pd.Timedelta(days=2)


def _plan_target(side) -> int:  # type: ignore[no-untyped-def]
    fc = side.forecast
    q = sizing_quantile(side.policy)  # the policy's sizing quantile, set or derived
    return plan_capacity(
        PlanInput(
            policy=side.policy,
            now=AS_OF.to_pydatetime(),
            current_workers=side.state.current_workers,
            current_backlog=side.state.current_backlog,
            mean_service_s=side.state.mean_service_s,
            service_scv=side.state.service_scv,
            window_starts=[t.to_pydatetime() for t in fc.timestamps],
            window_s=fc.interval_s,
            demand_per_s=fc.quantile(q),
            demand_quantile=q,
        )
    ).target_workers


def test_spike_scenario_needs_more_workers_than_the_baseline() -> None:
    sc = parse_scenario(
        {"policy": "q", "spike": {"size_per_s": 30, "offset_minutes": 60, "duration_minutes": 30}}
    )
    inp = what_if_inputs(rows(2, constant(10.0)), policy(), sc, as_of=AS_OF)
    added = inp.scenario.forecast.mean - inp.baseline.forecast.mean
    # 30 jobs/s for 30 min starting 60 min in: windows 4 and 5 (15-min windows) get it all
    assert added[4] == pytest.approx(30) and added[5] == pytest.approx(30)
    assert np.count_nonzero(added > 1e-9) == 2
    assert _plan_target(inp.scenario) > _plan_target(inp.baseline)


def test_multiplier_and_overrides_change_only_the_scenario_side() -> None:
    sc = parse_scenario(
        {
            "policy": "q",
            "multiplier": 2,
            "slo_wait_s": 5,
            "safety_margin": 0.3,
            "failure_mtbf_s": 3600,
            "horizon_hours": 2,
        }
    )
    inp = what_if_inputs(rows(2, constant(10.0)), policy(), sc, as_of=AS_OF)
    assert np.allclose(inp.scenario.forecast.mean, 2 * inp.baseline.forecast.mean)
    assert inp.scenario.policy.slo.wait_seconds == 5
    assert inp.baseline.policy.slo.wait_seconds == 30
    assert inp.scenario.policy.scaling.safety_margin == 0.3
    assert inp.scenario.policy.simulation.mtbf_seconds == 3600
    assert len(inp.baseline.forecast.timestamps) == len(inp.scenario.forecast.timestamps) == 8


def test_fixed_workers_hold_the_pool() -> None:
    sc = parse_scenario({"policy": "q", "workers": 7})
    inp = what_if_inputs(rows(2, constant(10.0)), policy(), sc, as_of=AS_OF)
    assert inp.scenario.state.current_workers == 7
    assert _plan_target(inp.scenario) == 7


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"policy": "q", "multiplier": 0}, "multiplier"),
        ({"policy": "q", "multiplier": -2}, "multiplier"),
        ({"policy": "q", "horizon_hours": 1000}, "horizon_hours"),
        ({"policy": "q", "slo_wait_s": 0}, "slo_wait_s"),
        ({"policy": "q", "safety_margin": 9}, "safety_margin"),
        ({"policy": "q", "workers": 0}, "workers"),
        ({"policy": "q", "failure_mtbf_s": -1}, "failure_mtbf_s"),
        ({"policy": "q", "spike": {"size_per_s": -5}}, "spike.size_per_s"),
        (
            {"policy": "q", "spike": {"size_per_s": 5, "duration_minutes": 0}},
            "spike.duration_minutes",
        ),
        (
            {
                "policy": "q",
                "spike": {"size_per_s": 5, "offset_minutes": 5, "at": "2026-03-01T00:00:00Z"},
            },
            "spike",
        ),
        ({"policy": ""}, "policy"),
        ({"policy": "q", "colour": "red"}, "colour"),
    ],
)
def test_bad_parameters_name_the_field(raw, field) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(WhatIfError, match=rf"\b{field}\b"):
        parse_scenario(raw)


def test_scenario_for_another_policy_is_refused() -> None:
    with pytest.raises(WhatIfError, match="policy"):
        what_if_inputs(
            rows(2, constant(10.0)), policy(), parse_scenario({"policy": "other"}), as_of=AS_OF
        )


def test_a_shared_pool_is_refused_by_what_if_and_by_the_single_queue_backtest() -> None:
    """Both plan one queue: on a shared pool they would silently answer for its first
    queue alone (issue 23); the shared pool's backtest scores every queue."""
    from capplan_core.backtest import BacktestError, run_backtest
    from capplan_core.policy import ScalingPolicy

    doc = policy().model_dump(mode="json")
    doc["shared"] = {"discipline": "strict", "queues": [{"queue": doc["queue"]}, {"queue": "lo"}]}
    pool = ScalingPolicy.model_validate(doc)
    with pytest.raises(WhatIfError, match="is a shared pool"):
        what_if_inputs(
            rows(2, constant(10.0)), pool, parse_scenario({"policy": pool.name}), as_of=AS_OF
        )
    with pytest.raises(BacktestError, match="run_shared_backtest"):
        run_backtest(rows(2, constant(10.0)), pool)


def test_run_what_if_spike_plans_and_simulates_both_sides() -> None:
    sc = parse_scenario(
        {
            "policy": "q",
            "spike": {"size_per_s": 30, "offset_minutes": 60, "duration_minutes": 30},
            "horizon_hours": 2,
        }
    )
    r = run_what_if(rows(2, constant(10.0)), policy(), sc, as_of=AS_OF)
    assert r.changed["target_workers"] > r.baseline["target_workers"]
    table = {row["metric"]: row for row in r.table()["rows"]}
    assert table["target_workers"]["change"] > 0
    for key in ("slo_attainment", "wait_p95_s", "max_backlog", "cost", "target_workers"):
        assert key in table
