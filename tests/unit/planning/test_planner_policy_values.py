"""Policy values the planner relies on are rejected at load time, naming the field."""

from __future__ import annotations

import pytest

from capplan_core.policy import PolicyError, parse_policies


def _doc(**over):
    p = {
        "name": "emails",
        "queue": "emails",
        "target": {"name": "w"},
        "slo": {"wait_p95_seconds": 30},
    }
    p.update(over)
    return {"policies": [p]}


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ({"slo": {"wait_p95_seconds": -30}}, "slo.wait_p95_seconds: Input should be greater"),
        ({"slo": {"wait_seconds": 0}}, "slo.wait_seconds"),
        ({"slo": {"wait_p95_seconds": 30, "mean_wait_seconds": -2}}, "slo.mean_wait_seconds"),
        ({"slo": {"max_backlog": -1}}, "slo.max_backlog"),
        ({"slo": {"drain_seconds": -600}}, "slo.drain_seconds"),
        ({"slo": {"wait_p95_seconds": 30, "wait_quantile": 1.0}}, "slo.wait_quantile"),
        ({"slo": {"wait_p95_seconds": 30, "wait_quantile": -0.5}}, "slo.wait_quantile"),
        ({"slo": {"max_utilization": 1.0}}, "slo.max_utilization"),
        ({"forecast": {"demand_quantile": 1.0}}, "forecast.demand_quantile"),
        ({"forecast": {"demand_quantile": 0}}, "forecast.demand_quantile"),
        (
            {"scaling": {"min_workers": 5, "max_workers": 2}},
            "min_workers (5) must be <= max_workers (2)",
        ),
        ({"scaling": {"safety_margin": -0.1}}, "scaling.safety_margin"),
        ({"scaling": {"budget_per_hour": 0}}, "scaling.budget_per_hour"),
        ({"scaling": {"scale_down_windows": 0}}, "scaling.scale_down_windows"),
        # infinities (YAML `.inf`) would overflow the plan's timestamps or void the SLO
        ({"slo": {"wait_p95_seconds": float("inf")}}, "slo.wait_p95_seconds"),
        ({"scaling": {"cooldown_seconds": float("inf")}}, "scaling.cooldown_seconds"),
        ({"scaling": {"plan_expiry_seconds": float("inf")}}, "scaling.plan_expiry_seconds"),
        ({"cost": {"worker_hour": float("nan")}}, "cost.worker_hour"),
    ],
)
def test_bad_policy_values_fail_naming_the_field(override, needle):
    with pytest.raises(PolicyError) as exc:
        parse_policies(_doc(**override))
    assert needle in str(exc.value)
    assert "policy 'emails'" in str(exc.value)
