"""``capplan simulate``: Monte Carlo of a stationary pool, with confidence intervals.

The command validates flags and prints; the simulation is
:func:`capplan_core.simulation.stationary.run_stationary`.
"""

from __future__ import annotations

import math

import typer

from capplan_cli.output import console, print_json
from capplan_core.simulation.stationary import run_stationary

CLI_ENGINES = ("auto", "simpy", "fast", "fluid")


def _positive(flag: str, value: float, *, allow_zero: bool = False) -> None:
    ok = math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise typer.BadParameter(
            f"must be a finite number {bound} (got {value!r})", param_hint=flag
        )


def register(app: typer.Typer) -> None:
    """Add the ``simulate`` command to ``app``."""

    @app.command("simulate")
    def simulate_cmd(
        arrival_rate: float | None = typer.Option(None, "--arrival-rate", help="arrivals, jobs/s"),
        mean_service_time: float | None = typer.Option(
            None, "--mean-service-time", help="mean time one worker spends on a job, s"
        ),
        workers: int | None = typer.Option(None, "--workers", help="workers in the pool"),
        plan_id: int | None = typer.Option(
            None, "--plan", help="simulate a stored plan (its forecast, steps and pool)"
        ),
        service_scv: float | None = typer.Option(
            None,
            "--service-scv",
            help="lognormal service with this squared coefficient of variation "
            "(default: exponential)",
        ),
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
        for flag, value in (
            ("--arrival-rate", arrival_rate),
            ("--mean-service-time", mean_service_time),
            ("--workers", workers),
        ):
            if value is None:
                raise typer.BadParameter("is required (or give --plan ID)", param_hint=flag)
        if arrival_rate is None or mean_service_time is None or workers is None:
            return  # unreachable: each was checked just above
        _positive("--arrival-rate", arrival_rate, allow_zero=True)
        _positive("--mean-service-time", mean_service_time)
        _positive("--hours", hours)
        if service_scv is not None:
            _positive("--service-scv", service_scv, allow_zero=True)
        if workers < 1:
            raise typer.BadParameter(
                f"must be an integer >= 1 (got {workers!r})", param_hint="--workers"
            )
        if replications < 1:
            raise typer.BadParameter(
                f"must be an integer >= 1 (got {replications!r})", param_hint="--replications"
            )
        if seed < 0:
            raise typer.BadParameter(f"must be an integer >= 0 (got {seed!r})", param_hint="--seed")
        if engine not in CLI_ENGINES:
            raise typer.BadParameter(
                f"must be one of {', '.join(CLI_ENGINES)} (got {engine!r})", param_hint="--engine"
            )
        out = run_stationary(
            arrival_rate,
            mean_service_time,
            workers,
            service_scv=service_scv,
            hours=hours,
            replications=replications,
            seed=seed,
            engine=engine,
        )
        if as_json:
            print_json(out)
            return
        console.print(
            f"{out['jobs']:,} jobs, {out['replications']} replications, {out['engine_label']}"
        )
        if out["approximate"]:
            console.print(
                "  approximate: too many jobs for the job-level Monte Carlo in ~2 s; "
                "no confidence intervals (use --engine fast to simulate every job)"
            )
        for key, unit in (("mean_wait_s", "s"), ("wait_probability", ""), ("wait_p95_s", "s")):
            ci = out[f"{key}_ci95"]
            note = "no interval" if ci is None else f"95% CI {ci[0]:.4g} – {ci[1]:.4g}"
            console.print(f"  {key:<18} {out[key]:.4g}{unit}  ({note})")
        console.print(f"  {'utilization':<18} {out['utilization']:.4f}")


def _simulate_stored(
    plan_id: int, replications: int, seed: int, engine: str, as_json: bool
) -> None:
    from capplan_app.bootstrap import plan_store
    from capplan_core.planning.errors import StoreError
    from capplan_core.planning.resimulate import resimulate_plan

    try:
        out = resimulate_plan(
            plan_store(), plan_id, replications=replications, seed=seed, engine=engine
        )
    except (StoreError, ValueError, KeyError) as err:
        raise typer.BadParameter(str(err), param_hint="--plan") from None
    if as_json:
        print_json(out)
        return
    for k, v in out.items():
        console.print(f"  {k:<22} {v}")
