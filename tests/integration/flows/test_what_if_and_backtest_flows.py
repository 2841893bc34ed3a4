"""what-if triggered through the Prefect API (a real deployment, run by a Prefect runner in
a subprocess), and the backtest flow, against the real Prefect server."""

from __future__ import annotations

import asyncio

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def _deploy_and_run(flow_obj, name: str, parameters: dict):
    from prefect.client.orchestration import get_client
    from prefect.deployments import arun_deployment
    from prefect.runner import Runner

    runner = Runner(name=f"test-{name}", query_seconds=1, pause_on_shutdown=False)
    await runner.aadd_flow(flow_obj, name=name)
    run = await arun_deployment(f"{flow_obj.name}/{name}", parameters=parameters, timeout=0)
    await asyncio.wait_for(runner.start(run_once=True), timeout=600)
    async with get_client() as client:
        return await client.read_flow_run(run.id)


def _artifacts(flow_run_id, key: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        return client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )


def test_what_if_spike_from_the_api_needs_more_workers_and_publishes_its_artifact(
    prefect_server, capplan_env
):
    from flows.what_if import what_if

    scenario = {
        "policy": "thumbnails",
        "spike": {"size_per_s": 12.0, "offset_minutes": 60, "duration_minutes": 60},
    }
    fr = asyncio.run(_deploy_and_run(what_if, "what-if", {"scenario": scenario}))
    assert fr.state.is_completed(), fr.state
    arts = [a for a in _artifacts(fr.id, "what-if-thumbnails") if a.flow_run_id == fr.id]
    assert arts, "the side-by-side artifact is missing"
    rows = {r["metric"]: r for r in arts[0].data} if isinstance(arts[0].data, list) else None
    if rows is None:
        import json

        rows = {r["metric"]: r for r in json.loads(arts[0].data)}
    assert rows["target_workers"]["scenario"] > rows["target_workers"]["baseline"]


def test_what_if_bad_parameter_fails_at_once_naming_it(prefect_server, capplan_env):
    from prefect.exceptions import ParameterTypeError  # noqa: F401 - documents the failure kind

    from flows.what_if import what_if

    with pytest.raises(Exception, match="multiplier"):
        what_if(scenario={"policy": "thumbnails", "multiplier": -2})


def test_backtest_flow_scores_every_strategy_and_publishes_the_picture(prefect_server, capplan_env):
    from flows.backtest import backtest

    state = backtest(
        policies=["thumbnails"],
        start="2026-11-19T12:00:00Z",
        end="2026-11-20T00:00:00Z",
        return_state=True,
    )
    out = state.result()
    assert len(out) == 1
    strategies = out[0]["strategies"]
    assert set(strategies) == {
        "predictive",
        "hybrid",
        "reactive",
        "static_peak",
        "oracle",
        "rate_oracle",
    }
    # the progress artifact, fed by run_backtest(progress=...), ends at 100 %
    run_id = state.state_details.flow_run_id
    progress = [
        a for a in _artifacts(run_id, "backtest-progress-thumbnails") if a.flow_run_id == run_id
    ]
    assert len(progress) == 1 and progress[0].type == "progress"
    assert float(progress[0].data) == 100.0
    for s in strategies.values():
        assert 0.0 <= s["slo_attainment"] <= 1.0 and s["worker_hours"] > 0
    assert strategies["oracle"]["worker_hours"] <= strategies["static_peak"]["worker_hours"]
    assert len(out[0]["windows"]) == 48
