"""``latest_audit_event``: the newest audit row of an action for a queue, alike on the fake,
SQLite and PostgreSQL; on PostgreSQL one probe of migration 0009's index, not a walk over the
action's rows (every plan of an ``auto`` policy reads its queue's newest strategy choice)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from capplan_adapters.store.db import open_store
from capplan_adapters.store.memory import InMemoryPlanStore
from capplan_core.planning.repository import PlanRepository

pytestmark = pytest.mark.integration

ACTION = "strategy-chosen"


def _seed(store: PlanRepository) -> None:
    for day in range(3):
        for q in ("emails", "thumbnails"):
            store.audit(ACTION, actor="choose-strategy", queue=q, details={"day": day, "q": q})
    store.audit("approved", actor="alice", queue="emails", details={"day": 9})


def _newest(store: PlanRepository) -> dict[str, object]:
    got = {}
    for q in ("emails", "thumbnails", "reports"):
        e = store.latest_audit_event(ACTION, queue=q)
        got[q] = None if e is None else (e.actor, e.details)
    return got


def test_the_newest_row_per_queue_alike_on_every_store(store_url: str) -> None:
    fake = InMemoryPlanStore()
    sql = open_store(store_url)
    for s in (fake, sql):
        _seed(s)
    expected = {
        "emails": ("choose-strategy", {"day": 2, "q": "emails"}),
        "thumbnails": ("choose-strategy", {"day": 2, "q": "thumbnails"}),
        "reports": None,
    }
    assert _newest(fake) == expected
    assert _newest(sql) == expected


def test_postgresql_answers_from_the_index(pg_url: str) -> None:
    from tests.conftest import fresh_pg_store_url

    url = fresh_pg_store_url(pg_url)
    eng = create_engine(url)
    with eng.begin() as c:  # a year of daily choices for 200 queues
        c.execute(
            text(
                "INSERT INTO audit_event (at, actor, action, queue, details) "
                "SELECT now(), 'choose-strategy', 'strategy-chosen', 'q' || (i % 200), '{}' "
                "FROM generate_series(1, 73000) AS i"
            )
        )
        c.execute(text("ANALYZE audit_event"))
        plan = "\n".join(
            r[0]
            for r in c.execute(
                text(
                    "EXPLAIN SELECT * FROM audit_event WHERE action = 'strategy-chosen' "
                    "AND queue = 'q7' ORDER BY id DESC LIMIT 1"
                )
            )
        )
    eng.dispose()
    assert "ix_audit_action_queue_id" in plan, plan
    assert "Sort" not in plan, plan
    entry = open_store(url).latest_audit_event(ACTION, queue="q7")
    assert entry is not None and entry.id == 72807  # the last i with i % 200 == 7
