"""The batched cycle on a real Prefect server on PostgreSQL, and on a real Dask LocalCluster.

plan-chunk task runs (a chunk of queues each) are mapped over the queues; each queue's plan,
artifacts and result stay its own. The Dask run gives exactly the local runner's plans.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.task_runners import ThreadPoolTaskRunner

from bench import synthetic_queues as syn
from capplan_app.settings import get_settings
from tasks.batch import add_progress_listener, progress_key
from tests.prefect_pg import prefect_on_postgres

pytestmark = [pytest.mark.integration]
AS_OF = syn.END.to_pydatetime()


@pytest.fixture(scope="module")
def pg_prefect(tmp_path_factory):
    with prefect_on_postgres(tmp_path_factory.mktemp("prefect-pg")) as server:
        yield server


@pytest.fixture(scope="module")
def metrics_20(tmp_path_factory) -> Path:
    return syn.write_metrics(tmp_path_factory.mktemp("metrics") / "m.parquet", 20)


@pytest.fixture(scope="module")
def metrics_20_now(metrics_20: Path) -> Path:
    """The same metrics shifted to end now: a cycle that saves plans plans at the wall clock."""
    from datetime import UTC, datetime

    from capplan_core.metrics.file_source import read_metrics_file
    from capplan_core.metrics.transfer import shifted_to_end, write_metrics_frame

    out = metrics_20.with_name("m-now.parquet")
    write_metrics_frame(shifted_to_end(read_metrics_file(metrics_20), datetime.now(UTC)), out)
    return out


@pytest.fixture
def env(pg_prefect, capplan_env, monkeypatch):
    # worker processes (Dask) read the API and the store from the environment
    monkeypatch.setenv("PREFECT_API_URL", pg_prefect.api_url)
    return capplan_env


def cycle(runner: Any, n: int, metrics: Path, *, save: bool = True) -> dict[str, Any]:
    """capacity-plan on the first ``n`` stored synthetic policies, plan only: stored at the
    wall clock (``save``), or a preview as of the synthetic data's end;
    ``runner`` None: the flow's own runner (CAPPLAN_TASK_RUNNER, as a deployed run)."""
    from prefect.client.schemas.filters import FlowRunFilterName

    from capplan_app.bootstrap import plan_store
    from flows.capacity_plan import capacity_plan

    plan_store().apply_policies(syn.policies(20), actor="test")
    names = [syn.queue_name(i) for i in range(n)]
    flow = capacity_plan if runner is None else capacity_plan.with_options(task_runner=runner)
    results = asyncio.run(
        flow(
            policies=names,
            metrics_path=str(metrics),
            as_of=None if save else AS_OF,
            approval="none",
            save=save,
        )
    )

    async def newest_run() -> str:
        async with get_client() as client:
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    name=FlowRunFilterName(any_=["plan " + ",".join(names)])
                ),
                sort="START_TIME_DESC",
                limit=1,
            )
        return str(runs[0].id)

    return {"id": asyncio.run(newest_run()), "results": results}


def _plans(results: list[dict[str, Any]]) -> dict[str, tuple]:
    return {
        r["queue"]: (
            r["status"],
            r["current_workers"],
            r["target_workers"],
            r["confidence"],
            [(s["to_workers"], s["execute_at"]) for s in r["steps"]],
            r["simulation"],
        )
        for r in results
    }


async def _task_run_names(run_id: str, *, at_least: int = 0, timeout_s: float = 60) -> list[str]:
    """The run's task run names; waits for ``at_least`` of them (Prefect records task runs
    from their events, a moment after the flow returns)."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        async with get_client() as client:
            runs = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
            )
        if len(runs) >= at_least or time.monotonic() > deadline:
            return sorted(r.name for r in runs)
        await asyncio.sleep(0.5)


async def _run_log(run_id: str, containing: str, *, timeout_s: float = 60) -> list[str]:
    """The run's log messages; waits for one containing ``containing`` (logs are shipped
    to the server in the background)."""
    import time

    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    deadline = time.monotonic() + timeout_s
    while True:
        async with get_client() as client:
            logs = await client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id]))
            )
        messages = [log.message for log in logs]
        if any(containing in m for m in messages) or time.monotonic() > deadline:
            return messages
        await asyncio.sleep(0.5)


def test_20_queues_on_prefect_on_postgres(env, pg_prefect, metrics_20_now, monkeypatch):
    monkeypatch.setenv("CAPPLAN_PLAN_CHUNK_SIZE", "5")
    get_settings.cache_clear()
    seen: list[tuple[int, int]] = []
    remove = add_progress_listener(lambda done, total: seen.append((done, total)))
    try:
        out = cycle(ThreadPoolTaskRunner(max_workers=2), 20, metrics_20_now)
    finally:
        remove()
    results = out["results"]
    # the CLI's bar is told as each chunk of 5 finishes
    assert sorted(seen) == [(5, 20), (10, 20), (15, 20), (20, 20)]
    assert [r["queue"] for r in results] == [syn.queue_name(i) for i in range(20)]
    assert {r["status"] for r in results} == {"proposed"}
    assert {r["policy_version"] for r in results} == {1}
    assert {r["note"] for r in results} == {"plan only (approval='none')"}
    assert all(r["target_workers"] >= 1 and r["steps"] is not None for r in results)

    names = asyncio.run(_task_run_names(out["id"], at_least=6))
    # the whole cycle's footprint: 3 store tasks (one settles a store restored from a
    # backup) and one task run per chunk of 5 queues
    assert [n.rsplit("-", 1)[0] for n in names if not n.startswith("plan-chunk")] == [
        "expire-undecided",
        "read-policies",
        "restore-check-capacity",
    ]
    assert [n for n in names if n.startswith("plan-chunk")] == sorted(
        f"plan-chunk-{i}: " + ",".join(syn.queue_name(j) for j in range(5 * i, 5 * i + 5))
        for i in range(4)
    )

    async def artifacts() -> dict[str, Any]:
        async with get_client() as client:
            arts = await client.read_artifacts(limit=200)
        return {a.key: a for a in arts if a.key}

    arts = asyncio.run(artifacts())
    for q in ("q0000", "q0019"):
        assert {f"data-quality-{q}", f"plan-{q}", f"simulation-{q}"} <= set(arts)
    progress = arts[progress_key(out["id"])]
    assert progress.type == "progress" and float(progress.data) == 100.0

    # the server's state is in PostgreSQL: the run and its 4 chunk task runs are rows there
    dsn = pg_prefect.database_url.replace("postgresql+asyncpg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        n = conn.execute(
            "SELECT count(*) FROM task_run WHERE flow_run_id = %s AND name LIKE 'plan-chunk-%%'",
            (out["id"],),
        ).fetchone()
    assert n is not None and n[0] == 4


@pytest.mark.slow
def test_dask_local_cluster_plans_exactly_what_the_local_runner_plans(env, metrics_20, monkeypatch):
    monkeypatch.setenv("CAPPLAN_PLAN_CHUNK_SIZE", "3")
    get_settings.cache_clear()
    # previews as of the data's end: both runs plan at the same "now"
    local = cycle(ThreadPoolTaskRunner(max_workers=2), 6, metrics_20, save=False)
    # Dask as a deployed run gets it: the flow's own runner, from CAPPLAN_TASK_RUNNER
    monkeypatch.setenv("CAPPLAN_TASK_RUNNER", "dask")
    get_settings.cache_clear()
    dask = cycle(None, 6, metrics_20, save=False)
    assert local["id"] != dask["id"]
    assert {r["status"] for r in dask["results"]} == {"preview"}
    assert _plans(dask["results"]) == _plans(local["results"])
    assert any(
        "plan-chunk task run(s) on DaskTaskRunner" in m
        for m in asyncio.run(_run_log(dask["id"], "plan-chunk task run(s) on"))
    )
