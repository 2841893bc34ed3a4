"""The live demo's scenario: its earlier days put the step where a seasonal forecast made at
any second of the minute sees it (issue 21: plans 1-4 of ``capplan demo --live`` kept 2 -> 2
workers when the demo started in the first seconds of a minute)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from capplan_app.live.scenario import LoopSpec, backfill_rows, live_policy, step_time
from capplan_core.forecast.engine import forecast_queue
from capplan_core.policy import ScalingPolicy
from capplan_core.quality.clean import clean_queue

SPEC = LoopSpec()
POLICY = ScalingPolicy.model_validate(live_policy(SPEC, "q", "rqw", "redis://x/9"))


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "timestamp": pd.to_datetime([r["recorded_at"] for r in rows], utc=True),
            "queue": "q",
            **{
                c: [r[c] for r in rows]
                for c in ("arrival_rate", "service_rate", "backlog", "workers")
            },
        }
    )


@pytest.mark.parametrize("second", range(0, 60, 6))
@pytest.mark.parametrize("plan_after_s", [25.0, 45.0])
def test_a_plan_made_soon_after_the_start_forecasts_the_step(
    second: int, plan_after_s: float
) -> None:
    start = datetime(2026, 12, 6, 17, 10, second, 300_000, tzinfo=UTC)
    step = step_time(SPEC, start)
    assert (
        timedelta(seconds=SPEC.step_lead_s)
        <= step - start
        < timedelta(seconds=SPEC.step_lead_s + 60)
    )
    history = _frame(backfill_rows(SPEC, "q", step, start))
    as_of = start + timedelta(seconds=plan_after_s)
    clean = clean_queue(history, queue="q", interval_s=60, now=as_of)
    window = pd.Timestamp(as_of).floor("60s")
    fc = forecast_queue(
        clean.series["arrival_rate"],
        POLICY.forecast,
        queue="q",
        exclude=clean.series["outlier"],
        start=window,
    )
    at = pd.DatetimeIndex(fc.timestamps)
    before = fc.mean[at < pd.Timestamp(step)]
    after = fc.mean[
        (at >= pd.Timestamp(step))
        & (at < pd.Timestamp(step) + timedelta(minutes=SPEC.high_minutes))
    ]
    assert len(after) and after.min() > 0.9 * SPEC.high_rate_per_s, (fc.notes, after)
    assert before.max() < 1.2 * SPEC.low_rate_per_s, before


def test_the_history_starts_hours_before_the_earlier_days_and_wraps_at_midnight() -> None:
    start = datetime(2026, 12, 6, 23, 58, 10, tzinfo=UTC)
    step = step_time(SPEC, start)
    assert step == datetime(2026, 12, 7, 0, 0, tzinfo=UTC)
    rows = backfill_rows(SPEC, "q", datetime(2026, 12, 6, 23, 55, tzinfo=UTC), start)
    first, last = rows[0]["recorded_at"], rows[-1]["recorded_at"]
    assert first == datetime(2026, 12, 2, 21, 58, tzinfo=UTC)  # 4 days and 2 hours before
    assert last == datetime(2026, 12, 6, 23, 58, tzinfo=UTC)
    high = [r["recorded_at"] for r in rows if r["arrival_rate"] > 5]
    # 23:55 for 15 minutes: until 00:10 of the next day, on each earlier day
    assert datetime(2026, 12, 6, 0, 5, tzinfo=UTC) in high
    assert datetime(2026, 12, 5, 23, 55, tzinfo=UTC) in high
    assert datetime(2026, 12, 6, 0, 10, tzinfo=UTC) not in high
    assert len(high) == 4 * SPEC.high_minutes + 4  # four whole blocks; 23:55-23:58 today


def test_a_shared_loop_serves_a_second_queue_after_the_first_with_its_own_slo() -> None:
    """The closed-loop test's pool (issue 23): `rq worker Q Q_low`, one policy for both."""
    from capplan_app.live.scenario import low_priority_queue

    spec = LoopSpec(low_priority_rate_per_s=1.0, low_priority_slo_wait_p95_s=10.0)
    policy = ScalingPolicy.model_validate(live_policy(spec, "q", "rqw", "redis://x/9"))
    assert list(policy.served_queues) == ["q", "q_low"] and low_priority_queue("q") == "q_low"
    assert policy.shared is not None and policy.shared.discipline == "strict"
    assert policy.slo_of("q_low").wait_seconds == 10.0
    assert policy.slo_of("q").wait_seconds == spec.slo_wait_p95_s
    assert POLICY.shared is None and list(POLICY.served_queues) == ["q"]  # one queue by default
    start = datetime(2026, 12, 6, 17, 10, tzinfo=UTC)
    steady = backfill_rows(spec, "q_low", step_time(spec, start), start, rates_per_s=(1.0, 1.0))
    rates = [r["arrival_rate"] for r in steady]
    assert len(rates) == (spec.history_days * 24 + spec.history_lead_h) * 60
    assert min(rates) > 0.8 and max(rates) < 1.2  # 3 % noise, no step on the second queue


def test_the_plans_table_shows_each_queue_of_a_shared_pool() -> None:
    from capplan_cli.output import _slo_cell, plans_table

    sim = {
        "p95_wait_s": 2.0,
        "classes": [
            {"queue": "push", "wait_quantile": 0.95, "wait_quantile_s": 2.19},
            {"queue": "digest", "wait_quantile": 0.99, "wait_quantile_s": 23.7},
        ],
    }
    assert _slo_cell(True, sim) == "ok, push p95 2.2s, digest p99 23.7s"
    assert _slo_cell(False, {"p95_wait_s": 31.0}) == "NOT met, p95 wait 31.0s"
    assert _slo_cell(None, sim) == ""
    table = plans_table([{"queue": "push", "simulation": sim, "slo_achievable": True}])
    assert list(table.columns[1].cells) == ["push + digest"]
