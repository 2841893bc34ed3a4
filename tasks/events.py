"""Prefect events for plan lifecycle changes, for routing notifications with automations."""

from __future__ import annotations

from typing import Any

from prefect.events import emit_event


def emit_plan_event(
    what: str, summary: dict[str, Any], *, actor: str, reason: str | None = None
) -> None:
    """Emit ``capplan.plan.<what>`` (awaiting-approval, approved, rejected, expired, applied,
    failed, held, cancelled, superseded, slo-alert) about resource ``capplan.plan.<id>``;
    ``reason`` (why, with the numbers) goes into the payload."""
    emit_event(
        event=f"capplan.plan.{what}",
        resource={
            "prefect.resource.id": f"capplan.plan.{summary['id']}",
            "prefect.resource.name": f"plan {summary['id']} ({summary['queue']})",
            "capplan.queue": str(summary["queue"]),
            "capplan.policy": str(summary.get("policy")),
            "capplan.mode": str(summary.get("mode")),
        },
        payload={
            "actor": actor,
            "current_workers": summary.get("current_workers"),
            "target_workers": summary.get("target_workers"),
            "confidence": summary.get("confidence"),
            "slo_achievable": summary.get("slo_achievable"),
            "reason": reason,
        },
    )
