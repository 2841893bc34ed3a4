"""Human-readable renderings of plans (Prefect pause descriptions, artifacts, CLI)."""

from __future__ import annotations

from typing import Any

from capplan_core.engine_labels import engine_label


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    if not rows:
        return "_(none)_"
    cols = columns or list(rows[0].keys())
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(out)


def _replica_note(state: dict[str, Any]) -> list[str]:
    """A line when the plan starts from a count the scaler read that the metrics did not see."""
    if not state.get("workers_differ"):
        return []
    return [
        f"**Live workers differ from measured:** the plan starts from "
        f"{state.get('current_workers')} ({state.get('replica_source')}); the newest metrics "
        f"measured {state.get('measured_workers')}  "
    ]


def dropped_rows_line(dropped: list[dict[str, Any]]) -> str:
    """What cleaning dropped before planning: how many rows, which column, why."""
    if not dropped:
        return "**Rows dropped by cleaning:** none  "
    return (
        "**Rows dropped by cleaning:** "
        + "; ".join(f"{d['rows']} ({d['column']}: {d['reason']})" for d in dropped)
        + "  "
    )


def plan_markdown(summary: dict[str, Any], details: dict[str, Any] | None = None) -> str:
    """The plan as a person decides on it: current → target, steps, confidence, cost, why."""
    details = details or {}
    sim = summary.get("simulation") or {}
    lines = [
        f"### Plan {summary.get('id')} for queue `{summary['queue']}` "
        f"(policy `{summary.get('policy')}`, mode `{summary['mode']}`)",
        "",
        f"**Workers:** {summary['current_workers']} → {summary['target_workers']}  ",
        *_replica_note(details.get("state") or {}),
        f"**Confidence (simulated SLO attainment):** {_fmt(summary['confidence'])}  ",
        f"**SLO achievable:** {summary['slo_achievable']}  ",
    ]
    if sim:
        lo, hi = sim.get("utilization_range") or (None, None)
        lines.append(
            f"**Simulation:** p95 wait {_fmt(sim.get('p95_wait_s'))} s, max backlog "
            f"{_fmt(sim.get('max_backlog'))}, utilisation {_fmt(lo)}–{_fmt(hi)} "
            f"({sim.get('replications')} replications, {sim.get('engine')} engine)  "
        )
        lines.append(f"**Proved by:** {engine_label(str(sim.get('engine')))}  ")
    cost = details.get("cost") or {}
    if cost:
        lines.append(
            "**Cost:** "
            + ", ".join(f"{k} {_fmt(v)}" for k, v in cost.items() if not isinstance(v, dict | list))
            + "  "
        )
    if details.get("strategy_why"):  # "scaling.strategy: auto — hybrid, chosen ... : why"
        lines.append(f"**Strategy:** {details['strategy_why']}  ")
    for r in details.get("reasons") or []:
        lines.append(f"- {r}")
    lines.append(dropped_rows_line(details.get("dropped_rows") or []))
    lines += [
        "",
        "#### Steps",
        table(summary.get("steps", []), ["execute_at", "from_workers", "to_workers", "reason"]),
    ]
    return "\n".join(lines)
