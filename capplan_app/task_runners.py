"""The Prefect task runner that runs capacity-plan's plan-chunk task runs, from settings.

- ``threads`` (default): a ``ThreadPoolTaskRunner`` in the flow's process.
- ``processes``: a ``ProcessPoolTaskRunner`` — the chunks use every core of this machine.
- ``dask``: prefect-dask's ``DaskTaskRunner`` — past one machine. ``CAPPLAN_DASK_ADDRESS``
  names an existing scheduler (``tcp://dask-scheduler:8786``); without it,
  ``CAPPLAN_DASK_CLUSTER_CLASS`` (e.g. ``dask_kubernetes.operator.KubeCluster`` from the
  ``cluster`` extra) with ``CAPPLAN_DASK_CLUSTER_KWARGS`` is created for the run, or else a
  ``LocalCluster`` of ``CAPPLAN_PLAN_CONCURRENCY`` single-threaded worker processes.

In every case at most ``CAPPLAN_PLAN_CONCURRENCY`` chunks run at once on this machine (the
pool's size); on a shared cluster the tag concurrency limit ``capplan-plan-chunk``
(``prefect concurrency-limit create capplan-plan-chunk N``) bounds it across runs.
"""

from __future__ import annotations

from typing import Any

from capplan_app.settings import Settings, get_settings

PLAN_CHUNK_TAG = "capplan-plan-chunk"


def dask_runner_options(settings: Settings) -> dict[str, Any]:
    """The ``DaskTaskRunner`` keyword arguments the settings ask for."""
    if settings.dask_address:
        return {"address": settings.dask_address}
    if settings.dask_cluster_class:
        return {"cluster_class": settings.dask_cluster_class,
                "cluster_kwargs": dict(settings.dask_cluster_kwargs)}
    return {"cluster_kwargs": {"n_workers": settings.plan_concurrency,
                               "threads_per_worker": 1, "processes": True,
                               "dashboard_address": None}}


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
