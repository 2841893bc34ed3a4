"""The restore check: compare the store with the mark kept outside it, and settle a restore.

The rule is :mod:`capplan_core.recovery`; this is its adapter. The mark outside the store is a
small JSON file under the data dir (``<data dir>/restore-watch/<store>.json``), written after
every check; the mark inside is read from the store itself (PostgreSQL's system identifier
and timeline, the highest plan, step and audit ids). Every process on a machine shares the
file (an ``flock`` serializes their checks); processes on several machines each keep their
own, and a PostgreSQL advisory lock plus the ``store_restored`` audit row keep them from
noticing one restore twice.

:func:`check_restore` is what the sweeper (``apply-due``), each ``apply-step`` run and each
cycle call before anything else (``tasks/restore.py``), and ``capplan db restore`` right
after a restore. In the steady state it costs a few index look-ups and a file write.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from capplan_core.execution.scaler import Scaler, ScalerError
from capplan_core.planning.errors import DecisionConflict
from capplan_core.planning.repository import PlanRepository
from capplan_core.planning.stored_plan import STEP_FINAL, PlanStatus, StepStatus, StoredPlan
from capplan_core.recovery import (
    RECOVERED_ACTION,
    RESTORED_ACTION,
    StoreMark,
    already_noticed,
    expiry_comment,
    fence_of,
    in_doubt,
    overdue_approvals,
    pending_restore,
    restored_details,
    settle,
    went_back,
)

ACTOR = "capplan-restore-check"
#: ids handed out after a restore start this far past the highest id seen before it, so a
#: plan, step or audit row of the lost history never shares an id with a new one (a paused
#: approval run of a lost plan must not decide a new plan that got its id)
ID_MARGIN = 10_000
_TABLES = {"plan_id": "capacity_plan", "step_id": "scaling_step", "audit_id": "audit_event"}
_LOCK_KEY = 0x636170726573  # "capres": one restore check at a time per PostgreSQL store

ScalerFor = Callable[[StoredPlan, int], Scaler]


# -- the mark inside the store -----------------------------------------------------------------
def store_mark(engine: Engine) -> StoreMark:
    """The store's own mark: lineage (PostgreSQL) and highest ids."""
    with engine.connect() as c:
        ids = {
            k: int(c.execute(text(f"SELECT coalesce(max(id), 0) FROM {t}")).scalar_one())
            for k, t in _TABLES.items()
        }
        lineage = None
        if engine.dialect.name == "postgresql":
            sysid = c.execute(
                text("SELECT system_identifier FROM pg_control_system()")
            ).scalar_one()
            tli = c.execute(
                text("SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)")
            ).scalar_one()
            lineage = f"{sysid}:{int(tli, 16)}"
    return StoreMark(lineage, ids["plan_id"], ids["step_id"], ids["audit_id"])


def newest_row_at(engine: Engine) -> datetime | None:
    """When the newest audit row still in the store was written."""
    with engine.connect() as c:
        return c.execute(text("SELECT max(at) FROM audit_event")).scalar_one()  # type: ignore[no-any-return]


def move_ids_past(engine: Engine, mark: StoreMark, margin: int = ID_MARGIN) -> dict[str, int]:
    """PostgreSQL: set the id sequences of plans, steps and audit rows past ``mark`` plus
    ``margin`` (never backwards). Returns the next id of each. SQLite: nothing."""
    if engine.dialect.name != "postgresql":
        return {}
    out = {}
    with engine.begin() as c:
        for key, table in _TABLES.items():
            seq = str(
                c.execute(text(f"SELECT pg_get_serial_sequence('{table}', 'id')")).scalar_one()
            )
            floor = int(getattr(mark, key)) + margin
            out[table] = (
                int(
                    c.execute(
                        text(f"SELECT setval('{seq}', greatest(last_value, :floor)) FROM {seq}"),
                        {"floor": floor},
                    ).scalar_one()
                )
                + 1
            )
    return out


@contextlib.contextmanager
def _store_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as c:
        c.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_KEY})
        c.commit()
        try:
            yield
        finally:
            c.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
            c.commit()


# -- the mark outside the store ----------------------------------------------------------------
def mark_path(data_dir: Path, engine: Engine) -> Path:
    """The file holding the outside mark of the store behind ``engine`` (named by a hash of
    its URL without the password)."""
    return url_mark_path(data_dir, engine.url.render_as_string(hide_password=True))


def url_mark_path(data_dir: Path, url: str) -> Path:
    """:func:`mark_path` for a URL as rendered without its password."""
    return data_dir / "restore-watch" / f"{hashlib.sha256(url.encode()).hexdigest()[:16]}.json"


def forget_store(data_dir: Path, url: str) -> None:
    """Drop the outside mark of the store at ``url``: it was deleted on purpose and is made
    anew (the live demo's store, emptied each run), so its first rows are not a restore."""
    from sqlalchemy.engine import make_url

    path = url_mark_path(data_dir, make_url(url).render_as_string(hide_password=True))
    with _locked(path):
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read_outside(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (FileNotFoundError, ValueError):
        return {}


def _write_outside(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(doc, default=str))
    os.replace(tmp, path)


# -- the check ---------------------------------------------------------------------------------
def check_restore(
    store: PlanRepository,
    engine: Engine,
    data_dir: Path,
    scaler_for: ScalerFor,
    *,
    noticed_by: str,
    restore_report: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Notice a restore of the store and settle it (module doc); a no-op otherwise.

    ``restore_report``: given by ``capplan db restore``, which knows it restored (the
    report is audited with the restore). Returns what was found and done:
    ``{"restored": bool, "reason", "settled": {...} | None}``."""
    path = mark_path(data_dir, engine)
    with _locked(path), _store_lock(engine):
        outside = read_outside(path)
        seen = StoreMark.from_dict(outside["mark"]) if outside.get("mark") else None
        found = store_mark(engine)
        why = went_back(seen, found) or (
            "capplan db restore restored the store" if restore_report is not None else None
        )
        restored_id = outside.get("pending_restore")
        if why is not None or seen is None:
            # a restore (or a mark never kept here): the store's own audit says whether one is
            # noticed already, or still being settled
            events = store.audit_events(action=RESTORED_ACTION) + store.audit_events(
                action=RECOVERED_ACTION
            )
            if why is not None and not already_noticed(events, found):
                moved = move_ids_past(engine, found if seen is None else seen.ahead_of(found))
                store.audit(
                    RESTORED_ACTION,
                    actor=ACTOR,
                    details=restored_details(
                        found=found,
                        seen=seen,
                        why=why,
                        fence=store.now(),
                        newest_kept=newest_row_at(engine),
                        noticed_by=noticed_by,
                        extra={"next_ids": moved, "restore": restore_report},
                    ),
                )
                events = store.audit_events(action=RESTORED_ACTION) + events
            pending = pending_restore(events)
            restored_id = None if pending is None else pending.id
        settled = None
        if restored_id is not None:
            entry = next(
                e for e in store.audit_events(action=RESTORED_ACTION) if e.id == restored_id
            )
            settled = settle_restore(store, scaler_for, entry)
            if not settled["held_back"]:
                restored_id = None
        _write_outside(
            path,
            {
                "mark": store_mark(engine).as_dict(),
                "pending_restore": restored_id,
                "checked_by": noticed_by,
            },
        )
    return {"restored": why is not None, "reason": why, "settled": settled}


def settle_restore(store: PlanRepository, scaler_for: ScalerFor, entry: Any) -> dict[str, Any]:
    """Settle the in-doubt steps of the restore audited by ``entry`` (each claimed, its live
    count read, then ``noop``/``applied`` or ``expired``; never written) and expire the
    plans whose approval deadline passed. Audits ``restore_recovered`` once nothing is held
    back (a step another run still holds under a live lease is settled at the next check)."""
    fence = fence_of(entry)
    run_id = f"restore-check-{uuid.uuid4().hex[:12]}"
    counts: Counter[str] = Counter()
    held_back: list[int] = []
    for plan, step in in_doubt(store.list_plans(status=PlanStatus.APPROVED, limit=10_000), fence):
        claim = store.claim_step(step.id, run_id=run_id, lease_s=60.0, actor=ACTOR)
        if claim is None:
            now_status = next(s.status for s in store.get_plan(plan.id).steps if s.id == step.id)
            if now_status not in STEP_FINAL:
                held_back.append(step.id)
            continue
        held = StepStatus(claim.step.status)
        target = store.policy_for_plan(plan).target
        try:
            live: int | None = scaler_for(plan, step.id).read(target).replicas
        except ScalerError:
            live = None
        verdict = settle(claim.step, held, live, fence)
        store.move_step(
            step.id,
            held,
            verdict.status,
            run_id=run_id,
            actor=ACTOR,
            details={
                "step_id": step.id,
                "reason": verdict.reason,
                "live_before": live,
                "from_workers": step.from_workers,
                "to_workers": step.to_workers,
                "restore_audit_id": entry.id,
            },
            lease_ended=True,
        )
        counts[verdict.status.value] += 1
    now = store.now()
    expired = []
    for plan_id in overdue_approvals(
        store.list_plans(status=PlanStatus.PROPOSED, limit=10_000), now
    ):
        with contextlib.suppress(DecisionConflict):
            store.transition(plan_id, PlanStatus.EXPIRED, actor=ACTOR, comment=expiry_comment(now))
            expired.append(plan_id)
    out = {
        "restore_audit_id": entry.id,
        "fence_at": fence.isoformat(),
        "steps": dict(counts),
        "held_back": held_back,
        "plans_expired": expired,
    }
    if not held_back:
        store.audit(
            RECOVERED_ACTION, actor=ACTOR, details={**out, "lineage": entry.details.get("lineage")}
        )
    return out
