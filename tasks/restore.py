"""The restore check as a task, run first by the sweeper, each apply-step run and each cycle.

A store restored from a backup has forgotten what happened after its restore point; before
any step is applied this notices that and settles it (:mod:`capplan_core.recovery`, the rule;
:mod:`capplan_adapters.restore_watch`, its adapter): in-doubt steps become ``noop``/``expired``
without a write, plans whose approval deadline passed expire "restored from backup", and the
restore is audited. In the steady state it is a few index look-ups.
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger

from capplan_adapters.restore_watch import check_restore
from capplan_app import bootstrap
from capplan_app.bootstrap import plan_store
from capplan_app.settings import get_settings
from tasks.common import capplan_io_task


@capplan_io_task(name="restore-check", task_run_name="restore-check-{noticed_by}")
def restore_check(noticed_by: str) -> dict[str, Any]:
    """Notice a restore of the store and settle it before anything else runs (a no-op
    otherwise); ``noticed_by`` names the caller in the audit."""
    store = plan_store()
    result = check_restore(
        store, store.engine, get_settings().data_dir, bootstrap.step_scaler, noticed_by=noticed_by
    )
    if result["restored"] or result["settled"]:
        get_run_logger().warning(
            "the store was restored from a backup: %s; settled: %s",
            result["reason"] or "noticed earlier",
            result["settled"],
        )
    return result
