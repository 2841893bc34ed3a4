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
)
from capplan_core.approval.cap import capped_steps
from capplan_core.planning.stored_plan import LIVE, PlanDraft


def insert_plan(s: Session, rec: PlanDraft, policy_id: int) -> CapacityPlanRow:
    """Add the plan with its steps, simulation, forecast points and quality report."""
    status = PlanStatus.SKIPPED if rec.skipped_reason else PlanStatus.PROPOSED
    plan = CapacityPlanRow(
        policy_id=policy_id, queue=rec.queue, mode=rec.mode,
        current_workers=rec.current_workers, target_workers=rec.target_workers,
        confidence=rec.confidence, slo_achievable=rec.slo_achievable, status=status,
        as_of=rec.as_of, expires_at=rec.expires_at, flow_run_id=rec.flow_run_id,
        skipped_reason=rec.skipped_reason, details=rec.details,
        policy_version=rec.details.get("policy_version"),
    )
    for i, st in enumerate(rec.steps):
        plan.steps.append(ScalingStepRow(
            seq=i, execute_at=st.execute_at, from_workers=st.from_workers,
            to_workers=st.to_workers, reason=st.reason, confidence=st.confidence,
            explanation=st.explanation))
    if rec.simulation is not None:
        sim = rec.simulation
        plan.simulation = SimulationResultRow(
            slo_achievement_rate=sim.slo_achievement_rate, max_backlog=sim.max_backlog,
            p95_latency=sim.p95_wait_s,
            utilization_range={"min": sim.utilization_range[0], "max": sim.utilization_range[1]},
            replications=sim.replications, engine=sim.engine, details=sim.details)
    s.add(plan)
    s.flush()
    s.add_all([ForecastPointRow(plan_id=plan.id, **asdict(p)) for p in rec.forecast])
    if rec.quality is not None:
        q = rec.quality
        s.add(DataQualityReportRow(queue=q.queue, passed=q.passed, report=q.report))
    s.flush()
    return plan


def _cancel_pending(plan: CapacityPlanRow) -> None:
    for st in plan.steps:
        if st.status == StepStatus.PENDING:
            st.status = StepStatus.CANCELLED


def supersede_proposed(s: Session, plan: CapacityPlanRow) -> list[int]:
    """A newer plan supersedes its queue's older proposed plans (audited); their ids."""
    older = list(s.scalars(select(CapacityPlanRow).where(
        CapacityPlanRow.queue == plan.queue, CapacityPlanRow.id < plan.id,
        CapacityPlanRow.status == PlanStatus.PROPOSED).with_for_update()))
    for old in older:
        old.status = PlanStatus.SUPERSEDED
        _cancel_pending(old)
        s.add(AuditEventRow(actor="capplan", action="superseded", plan_id=old.id,
                            queue=old.queue, details={"by_plan": plan.id,
                                                      "reason": "a newer plan was proposed"}))
    return [o.id for o in older]


def supersede_outdated(s: Session, plan: CapacityPlanRow, made_under: int, current: int) -> None:
    """A plan made under a policy version that changed while it was planned is superseded
    at once (audited): nothing executes under a version that is no longer the policy."""
    plan.status = PlanStatus.SUPERSEDED
    _cancel_pending(plan)
    s.add(AuditEventRow(actor="capplan", action="superseded", plan_id=plan.id, queue=plan.queue,
                        details={"reason": f"made under policy version {made_under}; the "
                                           f"policy is at version {current} now",
                                 "policy_version": made_under}))
    s.flush()


def supersede_live(s: Session, plan: CapacityPlanRow) -> None:
    """Supersede the queue's other live plans (audited), before ``plan`` becomes live."""
    for old in s.scalars(select(CapacityPlanRow).where(
            CapacityPlanRow.queue == plan.queue, CapacityPlanRow.id != plan.id,
            CapacityPlanRow.status.in_(LIVE)).with_for_update()):
        old.status = PlanStatus.SUPERSEDED
        _cancel_pending(old)
        s.add(AuditEventRow(actor="capplan", action="superseded", plan_id=old.id,
                            queue=old.queue, details={"by_plan": plan.id}))
    # the partial unique index checks each row as it is written: old ones first
    s.flush()


def newer_plan_row(s: Session, plan: CapacityPlanRow) -> CapacityPlanRow | None:
    """The newest plan of the queue made after ``plan`` (skipped plans do not count)."""
    return s.scalar(select(CapacityPlanRow).where(
        CapacityPlanRow.queue == plan.queue, CapacityPlanRow.id > plan.id,
        CapacityPlanRow.status != PlanStatus.SKIPPED,
    ).order_by(CapacityPlanRow.id.desc()).limit(1))


def apply_cap(plan: CapacityPlanRow, max_workers: int) -> None:
    """Clip the plan's steps to the approver's cap; later steps start from the capped counts.

    Raises ValueError (the reason) when the cap is refused. The planned counts stay in each
    changed step's ``explanation["planned"]``.
    """
    steps = sorted(plan.steps, key=lambda st: st.seq)
    start = steps[0].from_workers if steps else (plan.current_workers or 0)
    capped = capped_steps(start, [(st.from_workers, st.to_workers) for st in steps], max_workers)
    for st, (frm, to) in zip(steps, capped, strict=True):
        if (frm, to) != (st.from_workers, st.to_workers):
            st.explanation = {**(st.explanation or {}),
                              "planned": {"from_workers": st.from_workers,
                                          "to_workers": st.to_workers},
                              "capped_by": max_workers}
            st.from_workers, st.to_workers = frm, to
