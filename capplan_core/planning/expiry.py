"""Expiry of undecided plans: the sweep every plan store runs the same way."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from capplan_core.planning.errors import DecisionConflict
from capplan_core.planning.stored_plan import PlanStatus

if TYPE_CHECKING:
    from capplan_core.planning.repository import PlanRepository

EXPIRY_COMMENT = "no decision before the approval deadline"


def expire_overdue_plans(store: PlanRepository, now: datetime, *, actor: str) -> list[int]:
    """Expire the proposed plans of ``store`` whose ``approval_deadline`` is at or before ``now``.

    Each expiry is an audited transition; a plan decided meanwhile (:class:`DecisionConflict`)
    is passed over. Returns the ids of the plans expired.
    """
    expired = []
    for plan in store.list_plans(status=PlanStatus.PROPOSED, limit=1000):
        deadline = plan.details.get("approval_deadline")
        if deadline and datetime.fromisoformat(deadline) <= now:
            try:
                store.transition(plan.id, PlanStatus.EXPIRED, actor=actor, comment=EXPIRY_COMMENT)
            except DecisionConflict:
                continue
            expired.append(plan.id)
    return expired
