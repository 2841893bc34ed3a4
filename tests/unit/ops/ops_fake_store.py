"""An in-memory stand-in for the store's read-only ops queries (capplan_adapters.store.ops_repo)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from capplan_core.ops_metrics import PlanFact

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
AS_OF = NOW - timedelta(minutes=30)


class FakeOpsStore:
    """Fixed answers: one cycle of three plans (a, b planned; c skipped), queue d missing."""

    def __init__(self, *, broken: bool = False) -> None:
        self.broken = broken
        self.reads = 0  # how many scrapes read the decided plans (the cache test counts them)
        created = AS_OF
        self.facts = [
            PlanFact(3, "c", "skipped", created + timedelta(seconds=40), AS_OF),
            PlanFact(2, "b", "proposed", created + timedelta(seconds=10), AS_OF),
            PlanFact(1, "a", "approved", created, AS_OF, created + timedelta(seconds=90)),
        ]

    def recent_plan_facts(self, limit: int = 5000) -> list[PlanFact]:
        if self.broken:
            raise ConnectionError("database is down")
        return self.facts[:limit]

    def enabled_policy_queues(self) -> set[str]:
        return {"a", "b", "c", "d"}

    def plan_status_counts(self) -> dict[str, int]:
        return {"approved": 1, "proposed": 1, "skipped": 1}

    def step_status_counts(self) -> dict[str, int]:
        return {"applied": 2, "failed": 1}

    def audit_action_counts(self, actions: tuple[str, ...]) -> dict[str, int]:
        return {a: (1 if a == "scale_failed" else 0) for a in actions}

    def decided_plan_facts(self, limit: int = 5000) -> list[PlanFact]:
        self.reads += 1
        return [f for f in self.facts if f.decided_at is not None][:limit]

    def oldest_awaiting_created_at(self) -> datetime | None:
        return AS_OF + timedelta(seconds=10)

    def newest_forecasts(self) -> dict[str, tuple[int, list[tuple[datetime, float]]]]:
        start = NOW - timedelta(minutes=30)
        return {
            "a": (
                1,
                [
                    (start, 10.0),
                    (start + timedelta(minutes=15), 10.0),
                    (start + timedelta(minutes=30), 10.0),
                ],
            )
        }

    def arrival_rates(
        self, spans: dict[str, tuple[datetime, datetime]]
    ) -> dict[str, list[tuple[datetime, float]]]:
        return {
            q: [(since, 12.0), (since + timedelta(minutes=15), 5.0)]
            for q, (since, _until) in spans.items()
        }
