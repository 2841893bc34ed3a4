"""Step outcomes and the audit trail: the execution half of the plan store.

Each step transition is one compare-and-set ``UPDATE scaling_step … WHERE id = … AND status =
… AND claimed_by = …`` with its audit row inserted in the same transaction
(:data:`~capplan_core.planning.stored_plan.STEP_TRANSITIONS`, docs/reliability.md). The
target lease is a row per target, taken by ``UPDATE … WHERE holder = me OR lease_until < now``
or by the first ``INSERT`` (the primary key makes a second one fail): the same on SQLite and
PostgreSQL, no advisory locks.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, exists, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from capplan_adapters.store.models import (
    AuditEventRow,
    CapacityPlanRow,
    PlanStatus,
    ScalingStepRow,
    StepStatus,
    TargetLeaseRow,
)
from capplan_adapters.store.plan_reads import PlanReader
from capplan_adapters.store.rows import step_from_row
from capplan_core.planning import plan_rules as rules
from capplan_core.planning.errors import StoreError
from capplan_core.planning.stored_plan import (
    STEP_FINAL,
    STEP_LEASED,
    StepClaim,
)


class ExecutionRepository(PlanReader):
    """Mixed into :class:`capplan_adapters.store.repo.PlanStore` (shares its session factory;
    the audit is read by :class:`PlanReader`)."""

    _session: sessionmaker[Session]
    engine: Engine

    def session(self) -> Session:
        return self._session()

    # -- the one clock ----------------------------------------------------------------------
    def now(self) -> datetime:
        """The database's clock: ``clock_timestamp()`` on PostgreSQL (the statement's time,
        shared by every worker that talks to this database); SQLite is embedded, so its clock
        is this host's."""
        if self.engine.dialect.name != "postgresql":
            return datetime.now(UTC)
        with self._session() as s:
            value = s.execute(text("SELECT clock_timestamp()")).scalar_one()
        return value.astimezone(UTC)

    def mark_step(
        self, step_id: int, status: StepStatus, *, actor: str, details: dict[str, Any]
    ) -> bool:
        """Record a pending step's final outcome directly (no claim: cancellations, outcomes
        capplan did not write itself), once; False if it had left ``pending`` already."""
        with self._session.begin() as s:
            plan_id = s.scalar(select(ScalingStepRow.plan_id).where(ScalingStepRow.id == step_id))
            if plan_id is None:
                raise StoreError(f"no step with id {step_id}")
        return self._cas(
            step_id,
            plan_id,
            StepStatus.PENDING,
            status,
            owner=None,
            actor=actor,
            action=f"step_{status.value}",
            details=details,
        )

    # -- the step state machine ---------------------------------------------------------
    def claim_step(
        self, step_id: int, *, run_id: str, lease_s: float, actor: str
    ) -> StepClaim | None:
        """Claim a pending step for ``run_id`` until the database's now + ``lease_s``, or
        take over a claimed/applying step whose lease has run out, or that ``run_id`` itself
        holds (a retried task) (audited ``step_claimed`` / ``step_taken_over``). None when
        another run holds it or it is final."""
        now = self.now()
        with self.session() as s:
            row = s.get(ScalingStepRow, step_id)
            if row is None:
                raise StoreError(f"no step with id {step_id}")
            was, owner, lease, plan_id = row.status, row.claimed_by, row.lease_until, row.plan_id
        if was == StepStatus.PENDING:
            to = StepStatus.CLAIMED
        elif was in STEP_LEASED and (owner == run_id or (lease is not None and lease < now)):
            to = StepStatus(was)  # a dead run's step, or this run's own (a task retry)
        else:
            return None
        until = now + timedelta(seconds=lease_s)
        action = "step_claimed" if was == StepStatus.PENDING else "step_taken_over"
        details = {
            "run_id": run_id,
            "lease_until": until.isoformat(),
            "was": was,
            "previous_run": owner,
        }
        if not self._cas(
            step_id,
            plan_id,
            StepStatus(was),
            to,
            owner=owner,
            actor=actor,
            action=action,
            details=details,
            new_owner=run_id,
            lease_until=until,
            lease_expired_before=None if was == StepStatus.PENDING or owner == run_id else now,
        ):
            return None
        with self.session() as s:
            got = s.get(ScalingStepRow, step_id)
            if got is None:  # deleted with its plan meanwhile
                return None
            return StepClaim(
                step_from_row(got), run_id, until, was, None if was == StepStatus.PENDING else owner
            )

    def renew_claim(self, step_id: int, *, run_id: str, lease_s: float) -> bool:
        """Extend ``run_id``'s lease on its claimed/applying step (no audit row: a renewal
        changes no state); False when another run took it over or it is final."""
        until = self.now() + timedelta(seconds=lease_s)
        with self._session.begin() as s:
            done = s.execute(
                update(ScalingStepRow)
                .where(
                    ScalingStepRow.id == step_id,
                    ScalingStepRow.status.in_(STEP_LEASED),
                    ScalingStepRow.claimed_by == run_id,
                )
                .values(lease_until=until)
                .execution_options(synchronize_session=False)
            )
            return bool(done.rowcount == 1)  # type: ignore[attr-defined]

    def move_step(
        self,
        step_id: int,
        frm: StepStatus,
        to: StepStatus,
        *,
        run_id: str,
        actor: str,
        details: dict[str, Any],
        action: str | None = None,
        lease_s: float | None = None,
        lease_ended: bool = False,
    ) -> bool:
        """Compare-and-set one step transition held by ``run_id``, audited in the same
        transaction (``action``, default ``step_<to>``). False when the step is no longer
        ``frm`` under ``run_id``. Raises :class:`DecisionConflict` for a move the table
        forbids. A final status clears the lease; the last final step applies the plan.
        ``lease_s`` renews the lease from the database's now; ``lease_ended`` ends it."""
        with self.session() as s:
            plan_id = s.scalar(select(ScalingStepRow.plan_id).where(ScalingStepRow.id == step_id))
        if plan_id is None:
            raise StoreError(f"no step with id {step_id}")
        now = self.now()
        until = (
            now if lease_ended else None if lease_s is None else now + timedelta(seconds=lease_s)
        )
        return self._cas(
            step_id,
            plan_id,
            frm,
            to,
            owner=run_id,
            actor=actor,
            action=action or f"step_{to.value}",
            details=details,
            new_owner=run_id,
            lease_until=until,
            now=now,
        )

    def _cas(
        self,
        step_id: int,
        plan_id: int,
        frm: StepStatus,
        to: StepStatus,
        *,
        owner: str | None,
        actor: str,
        action: str,
        details: dict[str, Any],
        new_owner: str | None = None,
        lease_until: datetime | None = None,
        lease_expired_before: datetime | None = None,
        now: datetime | None = None,
    ) -> bool:
        rules.check_step_move(step_id, frm, to, owner=owner)
        values = rules.moved_step_fields(to, new_owner=new_owner, lease_until=lease_until)
        if to in STEP_FINAL:
            values["applied_at"] = now or self.now()
        where = [ScalingStepRow.id == step_id, ScalingStepRow.status == frm]
        where.append(
            ScalingStepRow.claimed_by.is_(None)
            if owner is None
            else ScalingStepRow.claimed_by == owner
        )
        if lease_expired_before is not None:
            where.append(ScalingStepRow.lease_until < lease_expired_before)
        with self._session.begin() as s:
            done = s.execute(
                update(ScalingStepRow)
                .where(*where)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                return False
            queue = s.scalar(select(CapacityPlanRow.queue).where(CapacityPlanRow.id == plan_id))
            a = rules.step_audit(
                plan_id,
                queue,
                step_id,
                frm.value,
                to.value,
                action=action,
                actor=actor,
                details=details,
            )
            s.add(
                AuditEventRow(
                    actor=a.actor,
                    action=a.action,
                    plan_id=a.plan_id,
                    queue=a.queue,
                    details=a.details,
                )
            )
            if to in STEP_FINAL:  # rules.plan_done, as one conditional UPDATE
                open_steps = exists().where(
                    and_(
                        ScalingStepRow.plan_id == plan_id, ScalingStepRow.status.not_in(STEP_FINAL)
                    )
                )
                s.execute(
                    update(CapacityPlanRow)
                    .where(
                        CapacityPlanRow.id == plan_id,
                        CapacityPlanRow.status == PlanStatus.APPROVED,
                        ~open_steps,
                    )
                    .values(status=PlanStatus.APPLIED)
                    .execution_options(synchronize_session=False)
                )
            return True

    # -- one writer per target ------------------------------------------------------------
    def acquire_target_lease(self, target: str, *, holder: str, lease_s: float) -> bool:
        """Take (or renew) the lease on ``target`` until the database's now + ``lease_s``;
        False when another holder's lease is still running."""
        now = self.now()
        until = now + timedelta(seconds=lease_s)
        with self._session.begin() as s:
            got = s.execute(
                update(TargetLeaseRow)
                .where(
                    TargetLeaseRow.target == target,
                    or_(TargetLeaseRow.holder == holder, TargetLeaseRow.lease_until < now),
                )
                .values(holder=holder, lease_until=until)
                .execution_options(synchronize_session=False)
            )
            if got.rowcount == 1:  # type: ignore[attr-defined]
                return True
            if s.get(TargetLeaseRow, target) is not None:
                return False
        try:
            with self._session.begin() as s:
                s.add(TargetLeaseRow(target=target, holder=holder, lease_until=until))
        except IntegrityError:  # another run inserted it first
            return False
        return True

    def release_target_lease(self, target: str, *, holder: str) -> bool:
        """Give the lease back (only its holder can); False when ``holder`` did not hold it."""
        with self._session.begin() as s:
            done = s.execute(
                update(TargetLeaseRow)
                .where(TargetLeaseRow.target == target, TargetLeaseRow.holder == holder)
                .values(lease_until=self.now() - timedelta(seconds=1))
                .execution_options(synchronize_session=False)
            )
            return bool(done.rowcount == 1)  # type: ignore[attr-defined]

    def last_scale_at(self, queue: str, *, plan_id: int | None = None) -> datetime | None:
        """When capplan last wrote a replica count for ``queue`` (optionally: in one plan)."""
        with self.session() as s:
            q = (
                select(ScalingStepRow.applied_at)
                .join(CapacityPlanRow, ScalingStepRow.plan_id == CapacityPlanRow.id)
                .where(CapacityPlanRow.queue == queue, ScalingStepRow.status == StepStatus.APPLIED)
            )
            if plan_id is not None:
                q = q.where(ScalingStepRow.plan_id == plan_id)
            return s.scalar(q.order_by(ScalingStepRow.applied_at.desc()).limit(1))

    def approval_limits(self, plan_id: int) -> dict[str, Any]:
        """The narrowing limits an approver gave (``max_workers``, ``apply_hours``), if any."""
        return rules.approval_limits(
            self.audit_events(plan_id=plan_id, action=PlanStatus.APPROVED.value)
        )

    # -- audit ----------------------------------------------------------------------------
    def audit(
        self,
        action: str,
        *,
        actor: str,
        plan_id: int | None = None,
        queue: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        with self._session.begin() as s:
            s.add(
                AuditEventRow(
                    actor=actor, action=action, plan_id=plan_id, queue=queue, details=details or {}
                )
            )
