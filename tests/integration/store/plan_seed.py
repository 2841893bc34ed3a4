"""What the store tests seed a store with: the ``emails`` policy, a clock, a full plan draft."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from capplan_adapters.store.db import open_store
from capplan_adapters.store.repo import PlanStore
from capplan_core.planning.stored_plan import (
    ForecastPoint,
    PlanDraft,
    QualityDraft,
    SimulationDraft,
    StepDraft,
)
from capplan_core.policy import parse_policies

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
POLICY = parse_policies(
    {
        "policies": [
            {
                "name": "emails",
                "queue": "emails",
                "mode": "manual",
                "target": {"namespace": "workers", "name": "email-worker"},
                "slo": {"wait_p95_seconds": 30},
            }
        ]
    }
)[0]


def seeded_store(url: str) -> PlanStore:
    """A fresh (uncached) store on ``url`` holding :data:`POLICY`."""
    open_store.cache_clear()
    store = open_store(url)
    store.apply_policies([POLICY], actor="test")
    return store


def forecast_points(n: int = 4) -> list[ForecastPoint]:
    """``n`` quarter-hour windows from :data:`T0`, rates 2, 3, 4, ... jobs/s."""
    return [
        ForecastPoint("emails", T0 + timedelta(minutes=15 * i), 2.0 + i, 1.5, 3.5 + i, 0.8, "ewma")
        for i in range(n)
    ]


def emails_draft(run: str | None = None, **kw: object) -> PlanDraft:
    """A 10 -> 15 -> 20 -> 12 plan with simulation, forecast and quality report; ``kw``
    replaces fields."""
    base = PlanDraft(
        policy_name="emails",
        queue="emails",
        mode="manual",
        current_workers=10,
        target_workers=20,
        confidence=0.9,
        slo_achievable=True,
        as_of=T0,
        flow_run_id=run,
        steps=[
            StepDraft(T0, 10, 15, "ramp"),
            StepDraft(T0 + timedelta(minutes=5), 15, 20, "ramp"),
            StepDraft(T0 + timedelta(hours=2), 20, 12, "after peak"),
        ],
        simulation=SimulationDraft(0.95, 40.0, 9.5, (0.5, 0.8), 100, "fast"),
        details={"policy": "emails"},
        forecast=forecast_points(),
        quality=QualityDraft("emails", True, {"checks": []}),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def due_plan(store: PlanStore, to_workers: int = 8, policy_version: int = 1) -> int:
    """An ``emails`` plan from 4 workers to ``to_workers`` in one step due 5 s ago, made under
    ``policy_version``, expiring in an hour on the store's clock; its id."""
    from datetime import timedelta

    from capplan_core.planning.stored_plan import StepDraft

    now = store.now()
    return store.create_plan(
        emails_draft(
            current_workers=4,
            target_workers=to_workers,
            as_of=now,
            expires_at=now + timedelta(hours=1),
            steps=[StepDraft(now - timedelta(seconds=5), 4, to_workers, "ramp")],
            details={"policy": "emails", "policy_version": policy_version},
        )
    )
