"""``capplan plans approve`` refuses a stale plan and a refused cap with the reason and exit
code 3, before it touches the paused run (issue 12, points 5 and 7)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from capplan_app.bootstrap import plan_store
from capplan_cli.main import app
from capplan_cli.plans import REFUSED_EXIT
from tests.integration.store.plan_seed import POLICY, emails_draft

pytestmark = pytest.mark.integration


def test_cli_refuses_a_stale_plan_and_a_bad_cap_with_exit_code_3(capplan_env: str) -> None:
    store = plan_store()
    store.apply_policies([POLICY], actor="test")
    old, new = store.create_plan(emails_draft()), store.create_plan(emails_draft())
    runner = CliRunner()
    stale = runner.invoke(app, ["plans", "approve", str(old), "--by", "alice"])
    assert stale.exit_code == REFUSED_EXIT == 3
    assert f"plan {old} is no longer the newest plan of queue 'emails': plan {new}" in (
        stale.output + str(stale.stderr_bytes or b"", "utf-8")
    )
    for cap, why in (
        (9, "below the plan's current count of 10"),
        (0, "never scales the pool to zero"),
    ):
        refused = runner.invoke(
            app, ["plans", "approve", str(new), "--by", "alice", "--max-workers", str(cap)]
        )
        assert refused.exit_code == 3
        assert why in refused.output + str(refused.stderr_bytes or b"", "utf-8")
    # nothing was decided
    assert [p.status for p in store.list_plans(queue="emails")] == ["proposed", "superseded"]
