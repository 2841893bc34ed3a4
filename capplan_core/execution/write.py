"""The cluster write of one claimed step: optimistic, bounded retries, read back first.

The caller has recorded the intent (``applying``). :func:`write_step` patches with the
version the guard read; on a transient fault (timeout, 5xx, 429, 409) it reads the target
back before doing anything else — a PATCH that timed out may have landed — and then either
stops (the count is already the target: landed), refuses (the count moved: drift), or writes
again with the new version. Permanent faults (403, 404, 422, bad config) stop at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from capplan_core.execution.guard import GuardAction, GuardDecision
from capplan_core.execution.scaler import LiveReplicas, ScaleOutcome, Scaler, ScalerError
from capplan_core.policy import TargetSpec


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``attempts`` writes; ``backoff_s`` × attempt seconds between them."""

    attempts: int = 3
    backoff_s: float = 0.5
    sleep: Callable[[float], None] = time.sleep


@dataclass
class WriteResult:
    """How the write ended: ``applied`` (``landed_after`` names the fault the write landed
    through, if any), ``refused`` (the re-check said no), ``failed`` (a permanent fault),
    ``in_doubt`` (transient faults to the end; the read-back could not settle it) or
    ``lost-claim`` (the fence said this run no longer holds the step: nothing more written)."""

    outcome: str
    live: LiveReplicas
    reason: str = ""
    scale: ScaleOutcome | None = None
    faults: list[dict[str, Any]] = field(default_factory=list)
    landed_after: str | None = None
    verdict: GuardDecision | None = None

    def details(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "faults": self.faults,
            "live_after": self.live.replicas,
            "version_after": self.live.version,
        }
        if self.scale is not None:
            out["outcome"] = {
                k: (v.isoformat() if isinstance(v, datetime) else v)
                for k, v in asdict(self.scale).items()
            }
        if self.landed_after:
            out["landed_after"] = self.landed_after
        return out


def _fault(err: ScalerError, attempt: int) -> dict[str, Any]:
    return {"attempt": attempt, "kind": err.kind, "status": err.status, "error": str(err)}


def write_step(
    scaler: Scaler,
    target: TargetSpec,
    to: int,
    live: LiveReplicas,
    *,
    recheck: Callable[[int], GuardDecision],
    retry: RetryPolicy,
    fence: Callable[[], bool] = lambda: True,
) -> WriteResult:
    """Write ``to`` replicas at ``live.version``; see the module doc. ``recheck(live_count)``
    runs the guard again after a conflict (only ``APPLY`` lets the write go on).
    ``fence()`` is asked before every write attempt (it renews the caller's claim and lease);
    False stops at once with ``lost-claim``: a run that no longer holds the step never
    writes."""
    faults: list[dict[str, Any]] = []
    known: LiveReplicas | None = live
    for attempt in range(1, retry.attempts + 2):
        if known is None:  # a write failed: read back before anything else
            known = _read_back(scaler, target, faults, attempt - 1, retry)
            if known is None:
                continue
            if known.replicas == to:
                return WriteResult(
                    "applied", known, faults=faults, landed_after=str(faults[-1]["kind"])
                )
            verdict = recheck(known.replicas)
            if verdict.action is not GuardAction.APPLY:
                return WriteResult("refused", known, verdict.reason, faults=faults, verdict=verdict)
        if attempt > retry.attempts:
            break
        if not fence():
            return WriteResult(
                "lost-claim", known, "lost the claim before a write attempt", faults=faults
            )
        try:
            scale = scaler.set_replicas(target, to, expected=known)
            after = LiveReplicas(to, scale.resource_version or known.version)
            return WriteResult("applied", after, scale=scale, faults=faults)
        except ScalerError as err:
            faults.append(_fault(err, attempt))
            if not err.transient:
                return WriteResult("failed", known, str(err), faults=faults)
            known = None
    last = faults[-1]["error"] if faults else ""
    return WriteResult(
        "in_doubt",
        known or live,
        f"transient faults on all {retry.attempts} attempts: {last}",
        faults=faults,
    )


def _read_back(
    scaler: Scaler,
    target: TargetSpec,
    faults: list[dict[str, Any]],
    attempt: int,
    retry: RetryPolicy,
) -> LiveReplicas | None:
    """Read the target after a failed write (after a pause); None if the read failed too
    (then no write may follow: the caller's next attempt must read first)."""
    retry.sleep(retry.backoff_s * attempt)
    try:
        return scaler.read(target)
    except ScalerError as err:
        faults.append({**_fault(err, attempt), "during": "read-back"})
        return None
