"""``capplan size``: workers needed for a steady arrival rate and a queue-wait SLO.

Only the SLO terms given on the command line are used (no safety margin, no utilisation
cap): the answer is the least worker count whose predicted wait quantile meets ``--slo-wait``
under M/M/c (Erlang C), or Allen–Cunneen when ``--service-scv``/``--arrival-scv`` differ from 1.
"""

from __future__ import annotations

import math

import typer

from capplan_cli.output import console, fail, print_json
from capplan_core.queueing import SloTerms, required_workers

MAX_WORKERS = 1_000_000


def _check(flag: str, value: float | None, *, low: float, low_open: bool = True,
           high: float | None = None, high_open: bool = True) -> None:
    """Exit 2 with a message naming the flag and the value unless low (<|<=) v (<|<=) high."""
    if value is None:
        return
    ok = math.isfinite(value) and (value > low if low_open else value >= low)
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        lo = f"{'>' if low_open else '>='} {low:g}"
        hi = "" if high is None else f" and {'<' if high_open else '<='} {high:g}"
        fail(f"{flag} must be a finite number {lo}{hi} (got {value!r})")


def register(app: typer.Typer) -> None:
    @app.command("size")
    def size(
        arrival_rate: float = typer.Option(..., "--arrival-rate", help="arrivals, jobs/s"),
        mean_service_time: float = typer.Option(
            ..., "--mean-service-time", help="mean time one worker spends on a job, s"),
        slo_wait: float = typer.Option(
            ..., "--slo-wait", help="queue wait (s) the --slo-quantile of jobs must not exceed"),
        slo_quantile: float = typer.Option(
            0.95, "--slo-quantile", help="share of jobs that must wait at most --slo-wait"),
        service_scv: float | None = typer.Option(
            None, "--service-scv",
            help="squared coefficient of variation of service times (default 1: exponential)"),
        arrival_scv: float | None = typer.Option(
            None, "--arrival-scv",
            help="squared coefficient of variation of inter-arrival times (default 1: Poisson)"),
        as_json: bool = typer.Option(False, "--json", help="print JSON"),
    ) -> None:
        """Least number of workers meeting the wait SLO, with the predicted queue metrics."""
        _check("--arrival-rate", arrival_rate, low=0)
        _check("--mean-service-time", mean_service_time, low=0)
        _check("--slo-wait", slo_wait, low=0)
        _check("--slo-quantile", slo_quantile, low=0, high=1)
        _check("--service-scv", service_scv, low=0, low_open=False)
        _check("--arrival-scv", arrival_scv, low=0, low_open=False)
        terms = SloTerms(wait_s=slo_wait, wait_quantile=slo_quantile)
        r = required_workers(
            arrival_rate, mean_service_time, terms,
            service_scv=1.0 if service_scv is None else service_scv,
            arrival_scv=1.0 if arrival_scv is None else arrival_scv, max_workers=MAX_WORKERS)
        if not r.feasible:
            fail(f"more than {MAX_WORKERS:,} workers would be needed for --arrival-rate "
                 f"{arrival_rate:g} and --mean-service-time {mean_service_time:g}", code=1)
        out = {
            "workers": r.workers,
            "utilization": r.utilization,
            "wait_probability": r.wait_probability,
            "mean_wait_s": r.mean_wait_s,
            "wait_quantile_s": r.wait_quantile_s,
        }
        if as_json:
            print_json(out)
            return
        model = "M/M/c (Erlang C)" if service_scv in (None, 1.0) and arrival_scv in (
            None, 1.0) else "G/G/c (Allen–Cunneen)"
        console.print(f"workers needed: [bold]{r.workers}[/]  ({model})")
        console.print(f"  utilisation          {r.utilization:.4f}")
        console.print(f"  P(wait)              {r.wait_probability:.4f}")
        console.print(f"  mean wait            {r.mean_wait_s:.4g} s")
        console.print(f"  p{slo_quantile * 100:g} wait            {r.wait_quantile_s:.4g} s"
                      f"  (SLO {slo_wait:g} s)")
        console.print(f"  binding term         {r.binding_term}")
