"""Retention of Prefect's own flow runs, against a real (private) Prefect server.

Finished runs (completed, failed, cancelled, crashed) that ended before the cutoff are
deleted through the Prefect client; scheduled, pending, running and paused runs, and finished
runs younger than the cutoff, stay. ``capplan db prune`` and the ``prune`` flow run against the
same server, in processes of their own, with the default limits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from capplan_adapters.store.db import open_store
from capplan_adapters.store.models import CapacityPlanRow
from tests.integration.store.plan_seed import POLICY, emails_draft
from tests.service_helpers import PrefectServerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
FINISHED = ("Completed", "Failed", "Cancelled", "Crashed")
UNFINISHED = ("Scheduled", "Pending", "Running", "Paused")


@pytest.fixture(scope="module")
def private_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServerProcess]:
    server = PrefectServerProcess(tmp_path_factory.mktemp("prefect-prune"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _client(server: PrefectServerProcess):  # type: ignore[no-untyped-def]
    from prefect.client.orchestration import SyncPrefectClient

    return SyncPrefectClient(server.api_url)


def _make_run(client, state_name: str):  # type: ignore[no-untyped-def]
    """A flow run of a dummy flow, forced into ``state_name``; its id."""
    from prefect import states

    fr = client.create_flow_run(flow=_flow(), state=states.Pending())
    if state_name in ("Running", "Paused", *FINISHED):
        client.set_flow_run_state(fr.id, states.Running(), force=True)
    if state_name != "Pending":
        make = {
            "Paused": lambda: states.Paused(timeout_seconds=3600),
            "Scheduled": lambda: states.Scheduled(
                scheduled_time=datetime.now(UTC) + timedelta(hours=1)
            ),
        }.get(state_name, getattr(states, state_name))
        client.set_flow_run_state(fr.id, make(), force=True)
    got = client.read_flow_run(fr.id)
    assert got.state.name == state_name, (state_name, got.state)
    return got.id


def _flow():  # type: ignore[no-untyped-def]
    from prefect import flow

    @flow(name="prune-test-dummy")
    def dummy() -> None:
        return None

    return dummy


def _exists(client, run_id) -> bool:  # type: ignore[no-untyped-def]
    from prefect.exceptions import ObjectNotFound

    try:
        client.read_flow_run(run_id)
    except ObjectNotFound:
        return False
    return True


def test_only_finished_runs_older_than_the_cutoff_are_deleted(private_server) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from capplan_app.prefect_retention import prune_flow_runs

    with (
        temporary_settings({PREFECT_API_URL: private_server.api_url}),
        _client(private_server) as client,
    ):
        old = {name: _make_run(client, name) for name in FINISHED + UNFINISHED}
        cutoff = datetime.now(UTC) + timedelta(seconds=1)
        time.sleep(2.5)  # the next run ends after the cutoff
        young = _make_run(client, "Completed")
        assert prune_flow_runs(cutoff, dry_run=True)["flow_runs"] == len(FINISHED)
        assert all(_exists(client, r) for r in [*old.values(), young])
        report = prune_flow_runs(cutoff)
        assert report == {"flow_runs": len(FINISHED), "older_than": cutoff.isoformat()}
        assert {n for n, r in old.items() if _exists(client, r)} == set(UNFINISHED)
        assert _exists(client, young)
        assert prune_flow_runs(cutoff)["flow_runs"] == 0


def _env(server: PrefectServerProcess | None, db: str, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(
        {
            "CAPPLAN_DATABASE_URL": db,
            "CAPPLAN_DATA_DIR": str(tmp),
            "PREFECT_HOME": str(tmp / "prefect-home"),
            "PYTHONPATH": str(ROOT),
        }
    )
    if server is not None:
        env["PREFECT_API_URL"] = server.api_url
    return env


def _old_plan(db: str) -> int:
    open_store.cache_clear()
    store = open_store(db)
    store.apply_policies([POLICY], actor="test")
    gone = store.create_plan(emails_draft())
    store.create_plan(emails_draft())  # the newest stays; it supersedes the first
    with store.session() as s, s.begin():
        s.execute(update(CapacityPlanRow).values(created_at=datetime.now(UTC) - timedelta(days=40)))
    return gone


def test_db_prune_and_the_prune_flow_use_the_settings_limits(
    private_server, tmp_path: Path
) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    db = f"sqlite:///{tmp_path / 'c.db'}"
    gone = _old_plan(db)
    with (
        temporary_settings({PREFECT_API_URL: private_server.api_url}),
        _client(private_server) as client,
    ):
        kept_run = _make_run(client, "Completed")  # ended just now: 14 days to go
    capplan = str(Path(sys.executable).parent / "capplan")
    dry = subprocess.run(
        [capplan, "db", "prune", "--dry-run", "--json"],
        cwd=tmp_path,
        env=_env(private_server, db, tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert report["dry_run"] is True
    assert report["pruned"]["plans"] == 1 and report["pruned"]["steps"] == 3
    assert report["flow_runs"]["flow_runs"] == 0
    assert open_store(db).get_plan(gone).id == gone  # still there

    # without PREFECT_API_URL the store is pruned and Prefect is left alone (no temp server)
    res = subprocess.run(
        [capplan, "db", "prune", "--json"],
        cwd=tmp_path,
        env=_env(None, db, tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["pruned"]["plans"] == 1
    assert "PREFECT_API_URL is not set" in report["flow_runs"]["skipped"]
    assert not (tmp_path / "prefect-home" / "prefect.db").exists()
    assert gone not in {p.id for p in open_store(db).list_plans()}

    # the prune flow itself, run against the server: a completed run with its artifact
    code = (
        "import json; from flows.prune import prune; "
        "print('REPORT', json.dumps(prune(dry_run=True)))"
    )
    flow = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=_env(private_server, db, tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert flow.returncode == 0, flow.stderr[-3000:]
    out = json.loads(flow.stdout.split("REPORT ", 1)[1].splitlines()[0])
    assert out["pruned"]["plans"] == 0 and out["flow_runs"]["flow_runs"] == 0
    with (
        temporary_settings({PREFECT_API_URL: private_server.api_url}),
        _client(private_server) as client,
    ):
        from prefect.client.schemas.filters import FlowFilter, FlowFilterName

        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["prune"])))
        assert [r.state.name for r in runs] == ["Completed"]
        assert client.read_artifacts() and any(a.key == "prune" for a in client.read_artifacts())
        assert _exists(client, kept_run)
