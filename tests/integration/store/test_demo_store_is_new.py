"""The live demo empties its own store each run: the next run's store is a new one, not a
restored one, so the restore watch (capplan_adapters/restore_watch.py) must not take its first
rows for a restore (it did: every demo run after the first audited "the store was restored from
a backup" and fenced its steps)."""

from __future__ import annotations

import pytest

from capplan_adapters.restore_watch import check_restore
from capplan_adapters.store.db import open_store
from capplan_app.bootstrap import plan_store
from capplan_app.demo_store import demo_settings, demo_store_path
from capplan_app.settings import get_settings
from capplan_core.execution.scaler import DryRunScaler

pytestmark = pytest.mark.integration


def _look() -> dict:
    store = plan_store()
    return check_restore(
        store,
        store.engine,
        get_settings().data_dir,
        lambda _plan, _step: DryRunScaler(),
        noticed_by="test",
    )


def _a_run_with_rows(n: int) -> None:
    store = plan_store()
    for i in range(n):
        store.audit("test_row", actor="test", details={"i": i})
    assert _look()["restored"] is False  # the mark is kept here, ids and all


def test_a_fresh_live_demo_store_is_not_taken_for_a_restored_one(capplan_env) -> None:
    with demo_settings("live", fresh=True):
        _a_run_with_rows(5)
    open_store.cache_clear()
    with demo_settings("live", fresh=True):  # the next demo run
        found = _look()
        assert found["restored"] is False and found["settled"] is None, found
        assert plan_store().audit_events(action="store_restored") == []


def test_the_same_store_emptied_behind_the_watch_is_taken_for_a_restore(capplan_env) -> None:
    """The control: without the demo forgetting its mark, the same emptied file is a restore
    (so the test above can fail)."""
    with demo_settings("live", fresh=True):
        _a_run_with_rows(5)
    open_store.cache_clear()
    path = demo_store_path("live")
    path.unlink()
    with demo_settings("live"):
        found = _look()
        assert found["restored"] is True, found
