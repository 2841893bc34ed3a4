"""``capplan size``: workers needed for steady arrivals and queue-wait SLOs.

Only the SLO terms given on the command line are used (no safety margin, no utilisation
cap): the answer is the least worker count whose predicted wait quantile meets the SLO
under M/M/c (Erlang C), or Allen–Cunneen when ``--service-scv``/``--arrival-scv`` differ from 1.

A shared pool (workers listening to several queues) is sized with one ``--class
NAME=RATE,WAIT_S[,QUANTILE]`` per queue, in service order, and ``--discipline``: the least
pool for which every class meets its own SLO (``capplan_core.queueing.pool_sizing``; exact for
strict priority with exponential service, else the approximation named in ``model``). One
``--class`` is the single-queue sizing above. Imports of the core are lazy: ``capplan`` starts
without them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import typer

from capplan_cli.output import console, fail, print_json

if TYPE_CHECKING:
    from capplan_core.queueing import PoolClass, PoolSizingResult

MAX_WORKERS = 1_000_000
CLASS_FORMAT = "NAME=RATE,WAIT_S[,QUANTILE]"
CLI_DISCIPLINES = ("strict", "round_robin")


def _check(
    flag: str,
    value: float | None,
    *,
    low: float,
    low_open: bool = True,
    high: float | None = None,
    high_open: bool = True,
) -> None:
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


def _number(spec: str, part: str, text: str, *, high: float | None = None) -> float:
    """One number of a --class value: finite, > 0 (and < ``high``), or exit 2 naming it."""
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not (math.isfinite(v) and v > 0 and (high is None or v < high)):
        bound = "> 0" if high is None else f"> 0 and < {high:g}"
        fail(f"--class {spec!r}: {part} must be a finite number {bound} (got {text!r})")
    return v


def parse_class(spec: str, default_quantile: float) -> PoolClass:
    """``NAME=RATE,WAIT_S[,QUANTILE]`` → a ``PoolClass`` (exit 2 naming the flag and value)."""
    from capplan_core.queueing import PoolClass, SloTerms

    name, sep, rest = spec.partition("=")
    parts = rest.split(",") if sep else []
    if not name.strip() or len(parts) not in (2, 3):
        fail(f"--class must be {CLASS_FORMAT} (got {spec!r})")
    rate = _number(spec, "RATE", parts[0])
    wait_s = _number(spec, "WAIT_S", parts[1])
    q = _number(spec, "QUANTILE", parts[2], high=1.0) if len(parts) == 3 else default_quantile
    return PoolClass(name.strip(), rate, SloTerms(wait_s=wait_s, wait_quantile=q))


def size_classes(
    specs: list[str], mean_service_s: float, discipline: str, service_scv: float, arrival_scv: float
) -> PoolSizingResult:
    """Parse and size a shared pool (exit 2 on bad input, 1 when no count within reach)."""
    from capplan_core.queueing import required_workers_priority

    if discipline not in CLI_DISCIPLINES:
        fail(f"--discipline must be one of {', '.join(CLI_DISCIPLINES)} (got {discipline!r})")
    classes = [parse_class(s, 0.95) for s in specs]
    names = [c.name for c in classes]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        fail(f"--class names must be unique (got {dup!r} twice)")
    r = required_workers_priority(
        classes,
        mean_service_s,
        discipline=discipline,
        service_scv=service_scv,
        arrival_scv=arrival_scv,
        max_workers=MAX_WORKERS,
    )
    if not r.feasible:
        fail(f"more than {MAX_WORKERS:,} workers would be needed for these --class values", code=1)
    return r


def classes_json(r: PoolSizingResult) -> dict[str, Any]:
    """The shared-pool JSON contract: workers, then each class's figures."""
    return {
        "workers": r.workers,
        "discipline": r.discipline,
        "model": r.model,
        "exact": r.exact,
        "classes": [
            {
                "name": c.name,
                "arrival_rate": c.arrival_rate_per_s,
                "wait_quantile": c.wait_quantile,
                "wait_quantile_s": c.wait_quantile_s,
                "mean_wait_s": c.mean_wait_s,
                "wait_probability": c.wait_probability,
                "meets_slo": c.meets_slo,
            }
            for c in r.classes
        ],
    }


def _print_classes(r: PoolSizingResult) -> None:
    console.print(f"workers needed: [bold]{r.workers}[/]  ({r.discipline}; {r.model})")
    for c in r.classes:
        verdict = "meets" if c.meets_slo else "MISSES"
        console.print(
            f"  {c.name:<16} {c.arrival_rate_per_s:g} jobs/s  P(wait) "
            f"{c.wait_probability:.4f}  mean {c.mean_wait_s:.4g} s  "
            f"p{c.wait_quantile * 100:g} {c.wait_quantile_s:.4g} s  {verdict}"
        )
    if r.binding_class is not None:
        console.print(f"  one fewer misses     {r.binding_class}: {r.binding_term}")


def _size_single(
    arrival_rate: float,
    mean_service_time: float,
    slo_wait: float,
    slo_quantile: float,
    service_scv: float | None,
    arrival_scv: float | None,
    as_json: bool,
) -> None:
    from capplan_core.queueing import SloTerms, required_workers

    terms = SloTerms(wait_s=slo_wait, wait_quantile=slo_quantile)
    r = required_workers(
        arrival_rate,
        mean_service_time,
        terms,
        service_scv=1.0 if service_scv is None else service_scv,
        arrival_scv=1.0 if arrival_scv is None else arrival_scv,
        max_workers=MAX_WORKERS,
    )
    if not r.feasible:
        fail(
            f"more than {MAX_WORKERS:,} workers would be needed for --arrival-rate "
            f"{arrival_rate:g} and --mean-service-time {mean_service_time:g}",
            code=1,
        )
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
    model = (
        "M/M/c (Erlang C)"
        if service_scv in (None, 1.0) and arrival_scv in (None, 1.0)
        else "G/G/c (Allen–Cunneen)"
    )
    console.print(f"workers needed: [bold]{r.workers}[/]  ({model})")
    console.print(f"  utilisation          {r.utilization:.4f}")
    console.print(f"  P(wait)              {r.wait_probability:.4f}")
    console.print(f"  mean wait            {r.mean_wait_s:.4g} s")
    console.print(
        f"  p{slo_quantile * 100:g} wait            {r.wait_quantile_s:.4g} s  (SLO {slo_wait:g} s)"
    )
    console.print(f"  binding term         {r.binding_term}")


def register(app: typer.Typer) -> None:
    @app.command("size")
    def size(
        arrival_rate: float | None = typer.Option(
            None, "--arrival-rate", help="arrivals, jobs/s (one queue)"
        ),
        mean_service_time: float = typer.Option(
            ..., "--mean-service-time", help="mean time one worker spends on a job, s"
        ),
        slo_wait: float | None = typer.Option(
            None, "--slo-wait", help="queue wait (s) the --slo-quantile of jobs must not exceed"
        ),
        slo_quantile: float | None = typer.Option(
            None,
            "--slo-quantile",
            help="share of jobs that must wait at most --slo-wait (default 0.95)",
        ),
        job_class: list[str] | None = typer.Option(
            None,
            "--class",
            help=f"a queue of a shared pool, {CLASS_FORMAT} (QUANTILE "
            "default 0.95); repeat in service order",
        ),
        discipline: str = typer.Option(
            "strict", "--discipline", help="shared pool order: strict | round_robin"
        ),
        service_scv: float | None = typer.Option(
            None,
            "--service-scv",
            help="squared coefficient of variation of service times (default 1: exponential)",
        ),
        arrival_scv: float | None = typer.Option(
            None,
            "--arrival-scv",
            help="squared coefficient of variation of inter-arrival times (default 1: Poisson)",
        ),
        as_json: bool = typer.Option(False, "--json", help="print JSON"),
    ) -> None:
        """Least number of workers meeting the wait SLO(s), with the predicted queue metrics."""
        _check("--mean-service-time", mean_service_time, low=0)
        _check("--service-scv", service_scv, low=0, low_open=False)
        _check("--arrival-scv", arrival_scv, low=0, low_open=False)
        if job_class:
            for flag, v in (
                ("--arrival-rate", arrival_rate),
                ("--slo-wait", slo_wait),
                ("--slo-quantile", slo_quantile),
            ):
                if v is not None:
                    fail(
                        f"{flag} cannot be combined with --class (got {flag} {v:g}): "
                        f"give each queue's rate and SLO in --class {CLASS_FORMAT}"
                    )
            r = size_classes(
                job_class,
                mean_service_time,
                discipline,
                1.0 if service_scv is None else service_scv,
                1.0 if arrival_scv is None else arrival_scv,
            )
            if as_json:
                print_json(classes_json(r))
            else:
                _print_classes(r)
            return
        if discipline != "strict":
            fail(f"--discipline {discipline} needs --class {CLASS_FORMAT} per queue")
        for flag, v in (("--arrival-rate", arrival_rate), ("--slo-wait", slo_wait)):
            if v is None:
                fail(f"missing option {flag} (or give --class {CLASS_FORMAT} per queue)")
        q = 0.95 if slo_quantile is None else slo_quantile
        _check("--arrival-rate", arrival_rate, low=0)
        _check("--slo-wait", slo_wait, low=0)
        _check("--slo-quantile", q, low=0, high=1)
        _size_single(
            float(arrival_rate or 0),
            mean_service_time,
            float(slo_wait or 0),
            q,
            service_scv,
            arrival_scv,
            as_json,
        )
