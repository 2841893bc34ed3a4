"""The policy and plans the execution unit tests run: an ``emails`` pool over the in-memory
plan repository."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from capplan_adapters.store.memory import InMemoryPlanStore
from capplan_core.planning.stored_plan import PlanDraft, PlanStatus, StepDraft
from capplan_core.policy import ScalingPolicy

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
KEY = "workers/email-worker"


def emails_policy(cooldown_s: int = 0) -> ScalingPolicy:
    """The ``emails`` Deployment policy: 2..40 workers, steps of at most 10."""
    return ScalingPolicy.model_validate(
        {
            "name": "emails",
            "queue": "emails",
            "target": {"kind": "deployment", "namespace": "workers", "name": "email-worker"},
            "slo": {"wait_p95_seconds": 30},
            "scaling": {
                "min_workers": 2,
                "max_workers": 40,
                "max_step": 10,
                "cooldown_seconds": cooldown_s,
            },
            "forecast": {"interval_minutes": 15},
        }
    )


def seed_plan(
    store: InMemoryPlanStore,
    policy: ScalingPolicy,
    *moves: tuple[int, int],
    spacing_min: int = 30,
    expires_at: datetime | None = None,
    approve: bool = True,
) -> int:
    """Store a plan of ``moves`` (from, to workers), one step every ``spacing_min`` minutes
    from :data:`T0`, approved by ``alice`` unless ``approve`` is false; returns its id."""
    store.apply_policies([policy], actor="test")
    pid = store.create_plan(
        PlanDraft(
            policy_name=policy.name,
            queue=policy.queue,
            mode="manual",
            current_workers=moves[0][0],
            target_workers=moves[-1][1],
            confidence=0.9,
            slo_achievable=True,
            as_of=T0,
            expires_at=expires_at,
            steps=[
                StepDraft(T0 + timedelta(minutes=spacing_min * i), a, b, "test")
                for i, (a, b) in enumerate(moves)
            ],
            details={"policy": policy.name},
        )
    )
    if approve:
        store.transition(pid, PlanStatus.APPROVED, actor="alice")
    return pid


class Clock:
    """The store's clock in a test: ``clock()`` is now; ``clock.at = t`` moves it."""

    def __init__(self, at: datetime = T0) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def store_at(at: datetime = T0) -> tuple[InMemoryPlanStore, Clock]:
    """An in-memory store whose clock starts at ``at`` (move it with ``clock.at = ...``)."""
    clock = Clock(at)
    return InMemoryPlanStore(clock=clock), clock
