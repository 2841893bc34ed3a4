"""``capplan simulate``: Monte Carlo of a stationary pool, with confidence intervals.

``run_stationary`` is the reusable part (the CLI's flags in, a JSON-able dict out); the command
only validates flags and prints. A warm-up of ``WARMUP_SHARE`` of the measured hours is run
first and left out, so the figures estimate the steady state Erlang C describes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import typer

from capplan_cli.output import console, print_json
from capplan_core.simulation import SimScenario, simulate

WARMUP_SHARE = 0.1
CLI_ENGINES = ("auto", "simpy", "fast", "fluid")


def run_stationary(
    arrival_rate_per_s: float, mean_service_s: float, workers: int, *,
    service_scv: float | None = None, hours: float = 1.0, replications: int = 10,
    seed: int = 0, engine: str = "auto",
) -> dict[str, Any]:
    """Simulate a constant arrival rate on a constant pool.

    Service is exponential, or lognormal with SCV ``service_scv`` when given. Returns
    ``mean_wait_s``, ``wait_probability``, ``wait_p95_s`` (each with a ``_ci95`` [low, high]),
    ``utilization``, ``jobs`` simulated (warm-up included), ``engine`` and ``replications``.
    """
    measured_s = hours * 3600.0
    warmup_s = WARMUP_SHARE * measured_s
    horizon_s = warmup_s + measured_s
    scenario = SimScenario(
        horizon_s=horizon_s, window_s=horizon_s, rates_per_s=np.array([arrival_rate_per_s]),
        initial_workers=workers, mean_service_s=mean_service_s,
        service_scv=1.0 if service_scv is None else service_scv,
        service_kind="exponential" if service_scv is None else "lognormal",
        warmup_s=warmup_s,
    )
    s = simulate(scenario, replications=replications, seed=seed, engine=engine)
    return {
        "mean_wait_s": s.mean_wait_s, "mean_wait_s_ci95": list(s.mean_wait_s_ci95),
        "wait_probability": s.wait_probability,
        "wait_probability_ci95": list(s.wait_probability_ci95),
        "wait_p95_s": s.p95_wait_s, "wait_p95_s_ci95": list(s.p95_wait_s_ci95),
        "utilization": s.utilization_range[1],
        "jobs": s.jobs, "engine": s.engine, "replications": s.replications,
    }


def _positive(flag: str, value: float, *, allow_zero: bool = False) -> None:
    ok = math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise typer.BadParameter(f"must be a finite number {bound} (got {value!r})",
                                 param_hint=flag)


def register(app: typer.Typer) -> None:
    """Add the ``simulate`` command to ``app``."""

    @app.command("simulate")
    def simulate_cmd(
        arrival_rate: float | None = typer.Option(None, "--arrival-rate",
                                                  help="arrivals, jobs/s"),
        mean_service_time: float | None = typer.Option(
            None, "--mean-service-time", help="mean time one worker spends on a job, s"),
        workers: int | None = typer.Option(None, "--workers", help="workers in the pool"),
        plan_id: int | None = typer.Option(
            None, "--plan", help="simulate a stored plan (its forecast, steps and pool)"),
        service_scv: float | None = typer.Option(
            None, "--service-scv",
            help="lognormal service with this squared coefficient of variation "
                 "(default: exponential)"),
        hours: float = typer.Option(1.0, "--hours", help="simulated hours per replication"),
        replications: int = typer.Option(10, "--replications", help="independent runs"),
        seed: int = typer.Option(0, "--seed", help="random seed (same seed, same result)"),
        engine: str = typer.Option("auto", "--engine", help="auto | simpy | fast | fluid"),
        as_json: bool = typer.Option(False, "--json", help="print JSON"),
    ) -> None:
        """Simulate a steady arrival rate on a fixed pool (waits with 95% intervals), or a
        stored plan with --plan ID."""
        if plan_id is not None:
            _simulate_stored(plan_id, replications, seed, engine, as_json)
            return
        for flag, value in (("--arrival-rate", arrival_rate),
                            ("--mean-service-time", mean_service_time), ("--workers", workers)):
            if value is None:
                raise typer.BadParameter("is required (or give --plan ID)", param_hint=flag)
        assert arrival_rate is not None and mean_service_time is not None  # for mypy
        assert workers is not None
        _positive("--arrival-rate", arrival_rate, allow_zero=True)
        _positive("--mean-service-time", mean_service_time)
        _positive("--hours", hours)
        if service_scv is not None:
            _positive("--service-scv", service_scv, allow_zero=True)
        if workers < 1:
            raise typer.BadParameter(f"must be an integer >= 1 (got {workers!r})",
                                     param_hint="--workers")
        if replications < 1:
            raise typer.BadParameter(f"must be an integer >= 1 (got {replications!r})",
                                     param_hint="--replications")
        if seed < 0:
            raise typer.BadParameter(f"must be an integer >= 0 (got {seed!r})",
                                     param_hint="--seed")
        if engine not in CLI_ENGINES:
            raise typer.BadParameter(f"must be one of {', '.join(CLI_ENGINES)} (got {engine!r})",
                                     param_hint="--engine")
        out = run_stationary(arrival_rate, mean_service_time, workers, service_scv=service_scv,
                             hours=hours, replications=replications, seed=seed, engine=engine)
        if as_json:
            print_json(out)
            return
        console.print(f"{out['jobs']:,} jobs, {out['replications']} replications, "
                      f"{out['engine']} engine")
        for key, unit in (("mean_wait_s", "s"), ("wait_probability", ""), ("wait_p95_s", "s")):
            lo, hi = out[f"{key}_ci95"]
            console.print(f"  {key:<18} {out[key]:.4g}{unit}  (95% CI {lo:.4g} – {hi:.4g})")
        console.print(f"  {'utilization':<18} {out['utilization']:.4f}")


def _simulate_stored(plan_id: int, replications: int, seed: int, engine: str,
                     as_json: bool) -> None:
    import numpy as np

    from capplan_app.bootstrap import plan_store
    from capplan_core.planning.resimulate import scenario_from_stored_plan
    from capplan_core.simulation import simulate
    from capplan_core.store.repo import StoreError

    store = plan_store()
    try:
        plan = store.get_plan(plan_id)
        policy = store.get_policy(plan.details["policy"])
        scenario = scenario_from_stored_plan(plan, policy, store.forecast_points(plan_id),
                                             n_paths=min(replications, 200),
                                             rng=np.random.default_rng(seed))
    except (StoreError, ValueError, KeyError) as err:
        raise typer.BadParameter(str(err), param_hint="--plan") from None
    s = simulate(scenario, replications=replications, seed=seed, engine=engine)
    out = {"plan": plan_id, "queue": plan.queue, "slo_achievement_rate": s.slo_achievement_rate,
           "achievement_ci95": list(s.achievement_ci95), "p95_wait_s": s.p95_wait_s,
           "mean_wait_s": s.mean_wait_s, "max_backlog": s.max_backlog,
           "utilization_range": list(s.utilization_range), "jobs": s.jobs, "engine": s.engine,
           "replications": s.replications}
    if as_json:
        print_json(out)
        return
    for k, v in out.items():
        console.print(f"  {k:<22} {v}")
