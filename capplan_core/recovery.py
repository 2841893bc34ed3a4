"""After a restore: notice that the store went back in time, and settle what it forgot (pure).

A store restored from a backup (``capplan db restore``, or pgBackRest by hand) has lost what
happened after its restore point: plans, approvals, step outcomes, audit rows. The world has
not: a pool that capplan scaled after that point is still scaled. Resuming as if nothing
happened is unsafe, and the pre-write guard alone does not make it safe: a step restored as
``pending`` whose pool was scaled to its target and then back again (by a later step, also
forgotten) finds the live count equal to its ``from_workers`` and would be written a second
time (:func:`capplan_core.execution.guard.check_step` says *apply*). So:

1. **Notice** (:func:`went_back`). Where the store had got to is kept outside it, as a
   :class:`StoreMark` (its PostgreSQL lineage: the cluster's system identifier and timeline,
   which a point-in-time restore always moves to a new timeline; and its highest plan, step
   and audit ids). A store whose lineage changed, or whose ids are behind the mark, was
   restored. ``capplan db restore`` also says so itself: it audits ``store_restored``.
2. **Fence** (:func:`in_doubt`). Every open step of an approved plan that was due at or
   before the fence (the moment the restore was noticed) may have been applied in the lost
   history; no step is ever applied before its ``execute_at``, so later steps are not in
   doubt. Each in-doubt step is settled once, by re-reading its target's live count
   (:func:`settle`): at the target, it had been applied: ``noop`` (``applied`` when the
   restored store already held its intent), never written again; elsewhere, ``expired``,
   never written: the next cycle plans from the live count.
3. **Expire** (:func:`overdue_approvals`) the plans that waited for a person and whose
   approval deadline passed, with the reason :data:`RESTORED_REASON`; a plan still inside its
   window stays resumable.
4. **Audit** the restore itself (``store_restored``, with the span of history lost) and its
   settling (``restore_recovered``, with the counts), so the trail has no silent gap.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from capplan_core.planning.stored_plan import (
    AuditEntry,
    PlanStatus,
    StepStatus,
    StoredPlan,
    StoredStep,
)
from capplan_core.utc import utc_datetime

RESTORED_REASON = "restored from backup"
#: audit actions: the restore noticed (with what was lost), and its in-doubt steps settled
RESTORED_ACTION = "store_restored"
RECOVERED_ACTION = "restore_recovered"
#: open steps: not final, so a run could still write them
OPEN_STEPS = frozenset({StepStatus.PENDING, StepStatus.CLAIMED, StepStatus.APPLYING})


@dataclass(frozen=True)
class StoreMark:
    """How far a store's history had got.

    Attributes:
        lineage: ``"<system identifier>:<timeline>"`` of the PostgreSQL cluster (a restore
            to a point in time promotes onto a new timeline; a different cluster has another
            identifier); None on SQLite.
        plan_id, step_id, audit_id: the highest ids of plans, steps and audit rows (0 when
            none).
    """

    lineage: str | None
    plan_id: int
    step_id: int
    audit_id: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> StoreMark:
        lineage = raw.get("lineage")
        return cls(
            None if lineage is None else str(lineage),
            int(raw.get("plan_id", 0)),
            int(raw.get("step_id", 0)),
            int(raw.get("audit_id", 0)),
        )

    def ahead_of(self, other: StoreMark) -> StoreMark:
        """The later of two marks, id by id (this lineage)."""
        return StoreMark(
            self.lineage,
            max(self.plan_id, other.plan_id),
            max(self.step_id, other.step_id),
            max(self.audit_id, other.audit_id),
        )


def went_back(seen: StoreMark | None, found: StoreMark) -> str | None:
    """Why the store's state is older than it was seen to be (a restore), or None.

    ``seen`` is the mark kept outside the store (None: never seen, nothing to compare);
    ``found`` the store's own now. On PostgreSQL the lineage decides: a changed one is a
    restore (or a failover onto a promoted standby, which may have lost the newest commits as
    well). Without a lineage (SQLite), an id behind the one seen means rows were lost.
    """
    if seen is None:
        return None
    if seen.lineage is not None and found.lineage is not None:
        if seen.lineage == found.lineage:
            return None  # one timeline only moves forward (emptied tables are not a restore)
        return (
            f"the database's lineage changed from {seen.lineage} to {found.lineage} "
            "(system identifier:timeline): it was restored to a point in time, or "
            "replaced"
        )
    behind = [
        f"{name} {now} < {before}"
        for name, now, before in (
            ("plan id", found.plan_id, seen.plan_id),
            ("step id", found.step_id, seen.step_id),
            ("audit id", found.audit_id, seen.audit_id),
        )
        if now < before
    ]
    if behind:
        return "the store's newest rows are older than seen before: " + ", ".join(behind)
    return None


def already_noticed(events: Sequence[AuditEntry], found: StoreMark) -> bool:
    """True when the store already audited a restore onto ``found``'s lineage (another
    process, or ``capplan db restore``, noticed it first)."""
    return found.lineage is not None and any(
        e.action == RESTORED_ACTION and e.details.get("lineage") == found.lineage for e in events
    )


def pending_restore(events: Sequence[AuditEntry]) -> AuditEntry | None:
    """The newest ``store_restored`` audit entry whose in-doubt steps are not yet settled
    (no ``restore_recovered`` after it), or None. ``events`` in any order."""
    ordered = sorted(
        (e for e in events if e.action in (RESTORED_ACTION, RECOVERED_ACTION)), key=lambda e: e.id
    )
    if not ordered or ordered[-1].action != RESTORED_ACTION:
        return None
    return ordered[-1]


def fence_of(entry: AuditEntry) -> datetime:
    """The fence of a restore: steps due at or before it are in doubt."""
    raw = entry.details.get("fence_at")
    return utc_datetime(datetime.fromisoformat(raw)) if raw else utc_datetime(entry.at)


def in_doubt(plans: Iterable[StoredPlan], fence: datetime) -> list[tuple[StoredPlan, StoredStep]]:
    """The open steps of approved plans due at or before ``fence``, in plan and step order:
    each may have been applied in the history the restore lost."""
    fence = utc_datetime(fence)
    out = []
    for plan in sorted(plans, key=lambda p: p.id):
        if plan.status != PlanStatus.APPROVED:
            continue  # a plan no longer approved has its open steps resolved, never applied
        for step in sorted(plan.steps, key=lambda s: s.seq):
            if step.status in OPEN_STEPS and utc_datetime(step.execute_at) <= fence:
                out.append((plan, step))
    return out


@dataclass(frozen=True)
class Settlement:
    """What an in-doubt step becomes, and why (for its audit row)."""

    status: StepStatus
    reason: str


def settle(step: StoredStep, held: StepStatus, live: int | None, fence: datetime) -> Settlement:
    """The outcome of an in-doubt ``step`` the settling run now holds in ``held`` (``claimed``
    or, taken over, ``applying``), given its target's ``live`` count (None: unreadable).
    Never a write: at the target it had been applied; anywhere else it may have been, so
    it is not written again."""
    due = utc_datetime(step.execute_at).isoformat()
    if live is not None and live == step.to_workers:
        return Settlement(
            StepStatus.APPLIED if held == StepStatus.APPLYING else StepStatus.NOOP,
            f"{RESTORED_REASON}: the target is already at {live}, so this step (due {due}, "
            "before the restore) had been applied; not written again",
        )
    seen = "unreadable" if live is None else str(live)
    return Settlement(
        StepStatus.EXPIRED,
        f"{RESTORED_REASON}: due {due}, before the restore was noticed at "
        f"{utc_datetime(fence).isoformat()}, so it may have been applied in the history the "
        f"restore lost (live count {seen}, step {step.from_workers} -> {step.to_workers}); "
        "not written, the next cycle plans from the live count",
    )


def overdue_approvals(plans: Iterable[StoredPlan], now: datetime) -> list[int]:
    """Ids of the plans waiting for a person whose approval deadline is at or before ``now``:
    they expire with :data:`RESTORED_REASON` (the others stay resumable)."""
    now = utc_datetime(now)
    out = []
    for plan in plans:
        deadline = plan.details.get("approval_deadline")
        if (
            plan.status == PlanStatus.PROPOSED
            and deadline
            and utc_datetime(datetime.fromisoformat(deadline)) <= now
        ):
            out.append(plan.id)
    return sorted(out)


def expiry_comment(now: datetime) -> str:
    return (
        f"{RESTORED_REASON}: the approval deadline passed before the store was back "
        f"(noticed {utc_datetime(now).isoformat()})"
    )


def restored_details(
    *,
    found: StoreMark,
    seen: StoreMark | None,
    why: str,
    fence: datetime,
    newest_kept: datetime | None,
    noticed_by: str,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``store_restored`` audit row's details: what was found, what had been seen, and
    the span of history lost (from the newest row kept to the moment it was noticed)."""
    return {
        "reason": why,
        "lineage": found.lineage,
        "found": found.as_dict(),
        "seen": None if seen is None else seen.as_dict(),
        "fence_at": utc_datetime(fence).isoformat(),
        "newest_kept_at": None if newest_kept is None else utc_datetime(newest_kept).isoformat(),
        "lost_span": (
            "history after newest_kept_at, up to the loss, is not in this store; "
            "steps due by fence_at are settled without writing"
        ),
        "noticed_by": noticed_by,
        **(extra or {}),
    }
