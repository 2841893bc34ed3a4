"""Production ``propose`` sizes like the backtest: at ``slo.target_attainment`` with no margin
on top when the policy sets it, and exactly as before when it does not."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from capplan_core.forecast import ForecastResult
from capplan_core.planning.decide import first_attempt, propose
from capplan_core.planning.pool_state import QueueState
from capplan_core.policy import ScalingPolicy

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
N = 4
STATE = QueueState(current_workers=3, current_backlog=0.0, mean_service_s=1.0)


def _policy(**slo: object) -> ScalingPolicy:
    return ScalingPolicy.model_validate(
        {
            "name": "emails",
            "queue": "emails",
            "target": {"name": "email-worker"},
            "slo": {"wait_p95_seconds": 2, **slo},
            "scaling": {
                "min_workers": 1,
                "max_workers": 200,
                "max_step": 200,
                "startup_seconds": 0,
                "cooldown_seconds": 0,
                "safety_margin": 0.2,
            },
        }
    )


def _forecast() -> ForecastResult:
    mean = np.full(N, 20.0)
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
        scale=np.full(N, 2.0),
    )


def test_propose_sizes_to_target_attainment_without_margin() -> None:
    fc = _forecast()
    p = propose(_policy(target_attainment=0.99), fc, STATE, first_attempt(fc), now=T0)
    w = p.windows[0]
    assert w["demand_quantile"] == 0.99
    assert w["demand_per_s"] == float(fc.quantile(0.99)[0])
    assert w["safety_margin"] == 0.0


def test_propose_without_target_attainment_keeps_quantile_and_margin() -> None:
    fc = _forecast()
    p = propose(_policy(), fc, STATE, first_attempt(fc), now=T0)
    w = p.windows[0]
    assert w["demand_quantile"] == 0.9
    assert w["demand_per_s"] == float(fc.quantile(0.9)[0])
    assert w["safety_margin"] == 0.2


def test_what_if_safety_margin_override_takes_effect_under_target_attainment() -> None:
    from capplan_core.whatif.scenario import changed_policy, parse_scenario

    pol = _policy(target_attainment=0.99)
    changed = changed_policy(pol, parse_scenario({"policy": "emails", "safety_margin": 0.5}))
    assert changed.slo.target_attainment is None and changed.scaling.safety_margin == 0.5
    fc = _forecast()
    w = propose(changed, fc, STATE, first_attempt(fc), now=T0).windows[0]
    assert (w["demand_quantile"], w["safety_margin"]) == (0.9, 0.5)
