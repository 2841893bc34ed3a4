"""``capplan simulate --plan ID`` re-simulates a stored plan from the SQLite store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from capplan_app.bootstrap import plan_store
from capplan_cli.main import app
from capplan_core.planning.stored_plan import ForecastPoint, PlanDraft, StepDraft
from capplan_core.policy import parse_policies

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)


def _store_plan(workers_after: int) -> int:
    store = plan_store()
    policy = parse_policies(
        {
            "policies": [
                {
                    "name": "q",
                    "queue": "q",
                    "target": {"name": "w"},
                    "slo": {"wait_p95_seconds": 5},
                    "scaling": {"startup_seconds": 0},
                }
            ]
        }
    )[0]
    store.apply_policies([policy], actor="test")
    pid = store.create_plan(
        PlanDraft(
            policy_name="q",
            queue="q",
            mode="manual",
            current_workers=2,
            target_workers=workers_after,
            confidence=None,
            slo_achievable=None,
            as_of=T0,
            steps=[StepDraft(T0, 2, workers_after, "test")],
            details={
                "policy": "q",
                "state": {"mean_service_s": 1.0, "service_scv": 1.0, "current_backlog": 0},
            },
        )
    )
    store.save_forecast(
        pid,
        [
            ForecastPoint(
                queue_name="q",
                forecast_time=T0 + timedelta(minutes=15 * i),
                predicted_rate=4.0,
                confidence_lower=3.8,
                confidence_upper=4.2,
                level=0.8,
                model="test",
            )
            for i in range(4)
        ],
    )
    return pid


def test_stored_plan_with_enough_workers_meets_slo_and_too_few_does_not(capplan_env):
    runner = CliRunner()
    good, bad = _store_plan(8), _store_plan(4)
    out = {}
    for pid in (good, bad):
        res = runner.invoke(app, ["simulate", "--plan", str(pid), "--replications", "20", "--json"])
        assert res.exit_code == 0, res.output
        out[pid] = json.loads(res.output)
    assert out[good]["queue"] == "q" and out[good]["jobs"] > 10_000
    assert out[good]["slo_achievement_rate"] == 1.0
    # 4 workers at 4 jobs/s with 1 s jobs is unstable: the SLO cannot hold
    assert out[bad]["slo_achievement_rate"] == 0.0


def test_unknown_plan_is_a_clear_error(capplan_env):
    res = CliRunner().invoke(app, ["simulate", "--plan", "4242"])
    assert res.exit_code == 2 and "no plan with id 4242" in res.output
