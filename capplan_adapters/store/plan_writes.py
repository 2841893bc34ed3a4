"""The writes inside one plan transaction of :class:`capplan_adapters.store.repo.PlanStore`.

Each function works on an open session; the caller owns the transaction, so a plan, its
steps, simulation, forecast and quality report, and every audit row commit or fail together.
"""

from __future__ import annotations

from dataclasses import asdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from capplan_adapters.store.models import (
    AuditEventRow,
    CapacityPlanRow,
    DataQualityReportRow,
    ForecastPointRow,
    PlanStatus,
    ScalingStepRow,
    SimulationResultRow,
    StepStatus,
    utcnow,
)
from capplan_core.planning import plan_rules as rules
from capplan_core.planning.stored_plan import LIVE, PlanDraft


def insert_plan(s: Session, rec: PlanDraft, policy_id: int) -> CapacityPlanRow:
    """Add the plan with its steps, simulation, forecast points and quality report."""
    status = PlanStatus.SKIPPED if rec.skipped_reason else PlanStatus.PROPOSED
    plan = CapacityPlanRow(
        policy_id=policy_id,
        queue=rec.queue,
        mode=rec.mode,
        current_workers=rec.current_workers,
        target_workers=rec.target_workers,
        confidence=rec.confidence,
        slo_achievable=rec.slo_achievable,
        status=status,
        as_of=rec.as_of,
        expires_at=rec.expires_at,
        flow_run_id=rec.flow_run_id,
        skipped_reason=rec.skipped_reason,
        details=rec.details,
        policy_version=rec.details.get("policy_version"),
    )
    for i, st in enumerate(rec.steps):
        plan.steps.append(
            ScalingStepRow(
                seq=i,
                execute_at=st.execute_at,
                from_workers=st.from_workers,
                to_workers=st.to_workers,
                reason=st.reason,
                confidence=st.confidence,
                explanation=st.explanation,
            )
        )
    if rec.simulation is not None:
        sim = rec.simulation
        plan.simulation = SimulationResultRow(
            slo_achievement_rate=sim.slo_achievement_rate,
            max_backlog=sim.max_backlog,
            p95_latency=sim.p95_wait_s,
            utilization_range={"min": sim.utilization_range[0], "max": sim.utilization_range[1]},
            replications=sim.replications,
            engine=sim.engine,
            details=sim.details,
        )
    s.add(plan)
    s.flush()
    s.add_all([ForecastPointRow(plan_id=plan.id, **asdict(p)) for p in rec.forecast])
    if rec.quality is not None:
        q = rec.quality
        s.add(DataQualityReportRow(queue=q.queue, passed=q.passed, report=q.report))
    s.flush()
    return plan


def apply_update(s: Session, plan: CapacityPlanRow, change: rules.PlanUpdate) -> None:
    """Apply one of :mod:`capplan_core.planning.plan_rules`' updates to ``plan`` in this
    transaction, with its audit row (the decision is stamped on the store's clock)."""
    plan.status = change.status
    steps = sorted(plan.steps, key=lambda st: st.seq)
    for e in change.step_edits:
        st = steps[e.index]
        st.from_workers, st.to_workers, st.explanation = (
            e.from_workers,
            e.to_workers,
            e.explanation,
        )
    if change.cancel_pending:
        for st in steps:
            if st.status == StepStatus.PENDING:
                st.status = StepStatus.CANCELLED
    if change.decided_by is not None:
        plan.decided_by, plan.decided_at = change.decided_by, utcnow()
        plan.decision_comment = change.decision_comment
    a = change.audit
    s.add(
        AuditEventRow(
            actor=a.actor, action=a.action, plan_id=a.plan_id, queue=a.queue, details=a.details
        )
    )


def supersede_proposed(s: Session, plan: CapacityPlanRow) -> list[int]:
    """A newer plan supersedes its queue's older proposed plans (audited); their ids."""
    older = list(
        s.scalars(
            select(CapacityPlanRow)
            .where(
                CapacityPlanRow.queue == plan.queue,
                CapacityPlanRow.id < plan.id,
                CapacityPlanRow.status == PlanStatus.PROPOSED,
            )
            .with_for_update()
        )
    )
    for old in older:
        apply_update(s, old, rules.superseded_by_newer(old.id, old.queue, plan.id))
    return [o.id for o in older]


def supersede_outdated(s: Session, plan: CapacityPlanRow, made_under: int, current: int) -> None:
    """A plan made under a policy version that changed while it was planned is superseded
    at once (audited): nothing executes under a version that is no longer the policy."""
    apply_update(s, plan, rules.superseded_as_outdated(plan.id, plan.queue, made_under, current))
    s.flush()


def supersede_live(s: Session, plan: CapacityPlanRow) -> None:
    """Supersede the queue's other live plans (audited), before ``plan`` becomes live."""
    live = list(
        s.scalars(
            select(CapacityPlanRow)
            .where(
                CapacityPlanRow.queue == plan.queue,
                CapacityPlanRow.id != plan.id,
                CapacityPlanRow.status.in_(LIVE),
            )
            .with_for_update()
        )
    )
    by_id = {old.id: old for old in live}
    for change in rules.live_to_supersede(plan.id, [(o.id, o.queue) for o in live]):
        apply_update(s, by_id[change.plan_id], change)
    # the partial unique index checks each row as it is written: old ones first
    s.flush()


def plan_facts(plan: CapacityPlanRow) -> rules.PlanFacts:
    """What the plan rules read of a plan row."""
    return rules.PlanFacts(
        plan.id,
        plan.queue,
        str(plan.status),
        plan.decided_by,
        plan.current_workers,
        tuple(
            (st.from_workers, st.to_workers, dict(st.explanation or {}))
            for st in sorted(plan.steps, key=lambda st: st.seq)
        ),
    )


def newer_plan_row(s: Session, plan: CapacityPlanRow) -> CapacityPlanRow | None:
    """The newest plan of the queue made after ``plan`` (skipped plans do not count)."""
    return s.scalar(
        select(CapacityPlanRow)
        .where(
            CapacityPlanRow.queue == plan.queue,
            CapacityPlanRow.id > plan.id,
            CapacityPlanRow.status != PlanStatus.SKIPPED,
        )
        .order_by(CapacityPlanRow.id.desc())
        .limit(1)
    )
