"""Good defaults (issue 22): what a policy that states only its SLO and bounds plans with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from capplan_core.planning import defaults
from capplan_core.planning.planner import PlanInput, plan_capacity
from capplan_core.planning.window_sizing import sizing_margin, sizing_quantile
from capplan_core.policy import ScalingPolicy, parse_policies

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def _policy(
    slo: dict[str, Any] | None = None,
    scaling: dict[str, Any] | None = None,
    forecast: dict[str, Any] | None = None,
) -> ScalingPolicy:
    return parse_policies(
        {
            "policies": [
                {
                    "name": "q",
                    "queue": "q",
                    "target": {"name": "w"},
                    "slo": slo or {"wait_p95_seconds": 30},
                    "scaling": scaling or {},
                    "forecast": forecast or {},
                }
            ]
        }
    )[0]


def test_a_policy_with_only_an_slo_gets_the_derived_target_pooled() -> None:
    pol = _policy()
    assert pol.slo.target_attainment is None and pol.slo.attainment_mode is None
    assert defaults.target_attainment(pol) == 0.99
    assert defaults.attainment_mode(pol) == "pooled"
    assert sizing_quantile(pol) == 0.99 and sizing_margin(pol) == 0.0


@pytest.mark.parametrize(
    ("quantile", "target"), [(0.8, 0.99), (0.95, 0.99), (0.995, 0.995), (0.9999, 0.999)]
)
def test_the_target_follows_a_stricter_slo_quantile(quantile: float, target: float) -> None:
    pol = _policy(slo={"wait_seconds": 20, "wait_quantile": quantile})
    assert defaults.target_attainment(pol) == pytest.approx(target)


def test_a_set_field_overrides_the_derived_one() -> None:
    pol = _policy(
        slo={"wait_p95_seconds": 30, "target_attainment": 0.95, "attainment_mode": "per_window"},
        scaling={"min_dwell_seconds": 600, "action_cost_worker_hours": 0},
    )
    assert defaults.target_attainment(pol) == 0.95
    assert defaults.attainment_mode(pol) == "per_window"
    assert defaults.dwell_seconds(pol) == 600
    assert defaults.action_cost(pol, typical=40) == 0


def test_a_margin_or_quantile_without_a_target_keeps_the_legacy_rule() -> None:
    for pol in (
        _policy(scaling={"safety_margin": 0.2}),
        _policy(forecast={"demand_quantile": 0.8}),
    ):
        assert defaults.uses_legacy_sizing(pol)
        assert defaults.target_attainment(pol) is None
        assert defaults.attainment_mode(pol) == "per_window"
    assert sizing_quantile(_policy(forecast={"demand_quantile": 0.8})) == 0.8
    assert sizing_margin(_policy(scaling={"safety_margin": 0.2})) == 0.2


@pytest.mark.parametrize(("minutes", "dwell"), [(5, 1800), (15, 1800), (30, 3600), (60, 7200)])
def test_the_dwell_is_two_windows_at_least_half_an_hour(minutes: int, dwell: float) -> None:
    assert defaults.dwell_seconds(_policy(forecast={"interval_minutes": minutes})) == dwell


def test_max_step_is_unlimited_beyond_the_bounds_by_default() -> None:
    assert _policy().scaling.max_step == 10_000


def test_the_action_cost_is_five_minutes_of_the_plans_typical_pool() -> None:
    # 1-s jobs, max_utilization 0.5: a window at d jobs/s needs ceil(2 d) workers; the median
    # window with demand (the closed ones do not count) is 10 jobs/s -> 20 workers
    pol = _policy(slo={"max_utilization": 0.5})
    demand = [0.0, 0.0, 5.0, 10.0, 10.0, 12.0, 0.0, 0.0]
    p = plan_capacity(
        PlanInput(
            policy=pol,
            now=NOW,
            current_workers=1,
            current_backlog=0.0,
            mean_service_s=1.0,
            service_scv=1.0,
            window_starts=[NOW + timedelta(minutes=15 * i) for i in range(8)],
            window_s=900.0,
            demand_per_s=np.asarray(demand),
        )
    )
    assert p.settings["action_cost_worker_hours"] == pytest.approx(20 * 5 / 60, abs=1e-3)
    assert p.settings["action_cost_from"].startswith("derived")
    assert p.settings["target_attainment"] == 0.99
    assert p.settings["min_dwell_seconds"] == 1800


def test_pooled_with_the_legacy_fields_and_no_target_is_refused() -> None:
    from capplan_core.policy import PolicyError

    with pytest.raises(PolicyError, match="attainment_mode 'pooled' needs slo.target_attain"):
        _policy(
            slo={"wait_p95_seconds": 30, "attainment_mode": "pooled"},
            scaling={"safety_margin": 0.1},
        )
