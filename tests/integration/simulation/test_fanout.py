"""Replications fanned out through Prefect task runners give exactly the one-process answer."""

from __future__ import annotations

import numpy as np
import pytest
from prefect import flow
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

from capplan_core.simulation import SimScenario, simulate
from tasks.simulate import fanout_simulate

pytestmark = [pytest.mark.integration]


def _scenario() -> SimScenario:
    return SimScenario(
        horizon_s=3600,
        window_s=900,
        rates_per_s=np.array([2.0, 3.0, 4.0, 3.0]),
        initial_workers=4,
        steps=[(600.0, 6)],
        mean_service_s=1.0,
        startup_s=60,
        mtbf_s=1800,
        restart_s=30,
        slo_wait_s=5,
    )


@pytest.mark.parametrize(
    "runner",
    [ThreadPoolTaskRunner(max_workers=4), ProcessPoolTaskRunner(max_workers=2)],
    ids=["threads", "processes"],
)
def test_fanned_out_replications_equal_the_single_process_run(prefect_server, runner):
    @flow(task_runner=runner)
    def fan() -> object:
        return fanout_simulate(_scenario(), replications=100, seed=11, engine="fast")

    fanned = fan()
    single = simulate(_scenario(), replications=100, seed=11, engine="fast")
    assert fanned.slo_achievement_rate == single.slo_achievement_rate
    assert fanned.p95_wait_s == single.p95_wait_s and fanned.jobs == single.jobs
    np.testing.assert_array_equal(fanned.window_failure_rate, single.window_failure_rate)
