"""capacity-plan's own task runner follows CAPPLAN_TASK_RUNNER when a run starts, so a
deployed run (which never goes through the CLI) runs its plan-chunk tasks where the settings
say."""

from __future__ import annotations

import pytest
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

from capplan_app.settings import get_settings
from capplan_app.task_runners import SettingsTaskRunner, runner_name
from flows.capacity_plan import capacity_plan


@pytest.fixture(autouse=True)
def _fresh_settings():
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_the_flow_is_declared_with_the_settings_runner():
    assert isinstance(capacity_plan.task_runner, SettingsTaskRunner)


@pytest.mark.parametrize(
    ("value", "expected"), [("threads", ThreadPoolTaskRunner), ("processes", ProcessPoolTaskRunner)]
)
def test_the_runner_is_chosen_when_a_run_starts_not_at_import(monkeypatch, value, expected):
    declared = capacity_plan.task_runner  # built at import, before the setting
    monkeypatch.setenv("CAPPLAN_TASK_RUNNER", value)
    monkeypatch.setenv("CAPPLAN_PLAN_CONCURRENCY", "3")
    with declared.duplicate() as runner:  # what Prefect's flow engine does per run
        assert isinstance(runner.inner, expected)
        assert runner.inner._max_workers == 3
        assert runner_name(runner) == expected.__name__
    assert runner._inner is None  # the inner runner is shut down with it


def test_each_run_gets_its_own_inner_runner(monkeypatch):
    monkeypatch.setenv("CAPPLAN_TASK_RUNNER", "threads")
    first, second = SettingsTaskRunner().duplicate(), SettingsTaskRunner().duplicate()
    with first, second:
        assert first.inner is not second.inner


def test_outside_a_run_it_says_so():
    with pytest.raises(RuntimeError, match="not entered"):
        _ = SettingsTaskRunner().inner


def test_a_bad_setting_is_refused_naming_it(monkeypatch):
    monkeypatch.setenv("CAPPLAN_TASK_RUNNER", "gpu")
    with pytest.raises(Exception, match="task_runner"), SettingsTaskRunner().duplicate():
        pass


def test_planning_processes_run_blas_single_threaded(monkeypatch):
    from threadpoolctl import threadpool_info

    from capplan_app import runtime

    monkeypatch.setattr(runtime, "_applied", None)
    monkeypatch.setenv("CAPPLAN_BLAS_THREADS", "1")
    assert runtime.limit_blas_threads() == 1
    pools = [p for p in threadpool_info() if p["user_api"] == "blas"]
    assert pools and all(p["num_threads"] == 1 for p in pools)
