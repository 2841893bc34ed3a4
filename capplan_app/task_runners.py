"""The Prefect task runner that runs capacity-plan's plan-chunk task runs, from settings.

- ``threads`` (default): a ``ThreadPoolTaskRunner`` in the flow's process.
- ``processes``: a ``ProcessPoolTaskRunner`` — the chunks use every core of this machine.
- ``dask``: prefect-dask's ``DaskTaskRunner`` — past one machine. ``CAPPLAN_DASK_ADDRESS``
  names an existing scheduler (``tcp://dask-scheduler:8786``); without it,
  ``CAPPLAN_DASK_CLUSTER_CLASS`` (e.g. ``dask_kubernetes.operator.KubeCluster`` from the
  ``cluster`` extra) with ``CAPPLAN_DASK_CLUSTER_KWARGS`` is created for the run, or else a
  ``LocalCluster`` of ``CAPPLAN_PLAN_CONCURRENCY`` single-threaded worker processes.

``SettingsTaskRunner`` is the capacity-plan flow's own runner: it builds the runner above from
the settings when a run starts, so a deployed run (a worker's process, the Kubernetes job's
``env``) and the CLI both follow ``CAPPLAN_TASK_RUNNER``, with no code per deployment.

In every case at most ``CAPPLAN_PLAN_CONCURRENCY`` chunks run at once on this machine (the
pool's size); on a shared cluster the tag concurrency limit ``capplan-plan-chunk``
(``prefect concurrency-limit create capplan-plan-chunk N``) bounds it across runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prefect.task_runners import TaskRunner

from capplan_app.settings import Settings, get_settings

PLAN_CHUNK_TAG = "capplan-plan-chunk"


def dask_runner_options(settings: Settings) -> dict[str, Any]:
    """The ``DaskTaskRunner`` keyword arguments the settings ask for."""
    if settings.dask_address:
        return {"address": settings.dask_address}
    if settings.dask_cluster_class:
        return {
            "cluster_class": settings.dask_cluster_class,
            "cluster_kwargs": dict(settings.dask_cluster_kwargs),
        }
    return {
        "cluster_kwargs": {
            "n_workers": settings.plan_concurrency,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
        }
    }


def plan_task_runner(settings: Settings | None = None) -> Any:
    """A fresh task runner for one capacity-plan run (a runner is entered once per run)."""
    s = settings or get_settings()
    if s.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(**dask_runner_options(s))
    if s.task_runner == "processes":
        from prefect.task_runners import ProcessPoolTaskRunner

        return ProcessPoolTaskRunner(max_workers=s.plan_concurrency)
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=s.plan_concurrency)


class SettingsTaskRunner(TaskRunner[Any]):
    """The task runner the settings name, chosen when a run starts (not when its flow is
    imported): each run enters ``duplicate()``, which builds :func:`plan_task_runner` from
    the settings of the process that runs the flow (a worker starts each flow run in a
    process of its own), and every submission goes to it."""

    def __init__(self) -> None:
        super().__init__()
        self._inner: TaskRunner[Any] | None = None

    @property
    def name(self) -> str:
        return "settings"

    @property
    def inner(self) -> TaskRunner[Any]:
        if self._inner is None:
            raise RuntimeError("SettingsTaskRunner is used outside a run (not entered)")
        return self._inner

    def duplicate(self) -> SettingsTaskRunner:
        return type(self)()

    def __enter__(self) -> SettingsTaskRunner:
        self._inner = plan_task_runner()
        self._inner.__enter__()
        super().__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            if self._inner is not None:
                self._inner.__exit__(*exc)
        finally:
            self._inner = None
            super().__exit__(*exc)

    def submit(
        self,
        task: Any,
        parameters: dict[str, Any],
        wait_for: Iterable[Any] | None = None,
        dependencies: dict[str, set[Any]] | None = None,
    ) -> Any:
        return self.inner.submit(task, parameters, wait_for, dependencies)

    def map(
        self, task: Any, parameters: dict[str, Any], wait_for: Iterable[Any] | None = None
    ) -> Any:
        return self.inner.map(task, parameters, wait_for)

    def cancel_all(self) -> None:
        cancel = getattr(self._inner, "cancel_all", None)
        if cancel is not None:
            cancel()


def runner_name(task_runner: TaskRunner[Any] | None) -> str:
    """The class name of the runner that really runs the tasks (a SettingsTaskRunner's own)."""
    if isinstance(task_runner, SettingsTaskRunner) and task_runner._inner is not None:
        task_runner = task_runner._inner
    return type(task_runner).__name__ if task_runner is not None else "none"
