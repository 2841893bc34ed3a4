"""Time is part of correctness (issue 21): a step is applied when it is due and never before,
on the store's clock; a run that lost its claim during the write records nothing as applied;
leases are bounded."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from execution_plans import KEY, T0, emails_policy, seed_plan, store_at
from faulty_scaler import FaultyScaler

from capplan_core.execution.executor import apply_step, check_lease_s, not_due_yet
from capplan_core.execution.scaler import LiveReplicas, ScaleOutcome
from capplan_core.execution.step_machine import target_lock_key
from capplan_core.planning.stored_plan import StepStatus
from capplan_core.policy import TargetSpec


def test_a_step_due_in_two_hours_is_not_applied_now_but_at_its_time() -> None:
    # the queue: busy now, a step down for the window two hours from now
    now = T0 - timedelta(hours=2)
    (store, clock), policy = store_at(now), emails_policy()
    pid = seed_plan(store, policy, (12, 4))  # its one step is at T0, two hours from now
    sid = store.get_plan(pid).steps[0].id
    scaler = FaultyScaler({KEY: 12})
    out = apply_step(store, scaler, policy, pid, sid)
    assert out.outcome == "deferred" and out.details["not_due"] is True
    assert out.retry_after_s == pytest.approx(7200.0)
    assert scaler.write_calls == 0 and scaler.replicas[KEY] == 12
    assert store.get_plan(pid).steps[0].status == StepStatus.PENDING
    assert store.audit_events(plan_id=pid, action="step_claimed") == []  # not even claimed
    clock.at = T0 - timedelta(seconds=1)
    assert apply_step(store, scaler, policy, pid, sid).outcome == "deferred"
    clock.at = T0
    assert apply_step(store, scaler, policy, pid, sid).outcome == "applied"
    assert scaler.replicas[KEY] == 4
    assert store.get_plan(pid).steps[0].applied_at == T0


def test_due_is_read_from_the_store_clock_not_the_callers() -> None:
    (store, _clock), policy = store_at(T0 - timedelta(minutes=5)), emails_policy()
    pid = seed_plan(store, policy, (4, 8))
    plan = store.get_plan(pid)
    assert not_due_yet(plan, plan.steps[0].id, store.now()) == pytest.approx(300.0)
    out = apply_step(store, FaultyScaler({KEY: 4}), policy, pid, plan.steps[0].id)
    assert out.outcome == "deferred" and "not due until" in out.reason


class TakenOverDuringWrite(FaultyScaler):
    """A write that takes longer than the lease: while it is in flight the lease runs out and
    another run takes the step over (its owner looks dead)."""

    def __init__(self, store, clock, step_id: int, lease_s: float) -> None:  # type: ignore[no-untyped-def]
        super().__init__({KEY: 4})
        self.store, self.clock, self.step_id, self.lease_s = store, clock, step_id, lease_s

    def set_replicas(
        self, target: TargetSpec, replicas: int, *, expected: LiveReplicas | None = None
    ) -> ScaleOutcome:
        out = super().set_replicas(target, replicas, expected=expected)
        self.clock.at = self.clock.at + timedelta(seconds=self.lease_s + 1)
        taken = self.store.claim_step(self.step_id, run_id="other", lease_s=60, actor="other")
        assert taken is not None and taken.taken_over_from == "slow"
        return out


def test_a_run_that_lost_its_claim_during_the_write_records_nothing_as_applied() -> None:
    (store, clock), policy = store_at(T0), emails_policy()
    pid = seed_plan(store, policy, (4, 8))
    sid = store.get_plan(pid).steps[0].id
    scaler = TakenOverDuringWrite(store, clock, sid, lease_s=30)
    out = apply_step(store, scaler, policy, pid, sid, run_id="slow", lease_s=30)
    assert out.outcome == "deferred" and out.details["lost_claim"] is True
    assert store.audit_events(plan_id=pid, action="scale") == []  # not recorded applied
    assert store.audit_events(plan_id=pid, action="step_applied") == []
    unconfirmed = store.audit_events(plan_id=pid, action="scale_unconfirmed")
    assert len(unconfirmed) == 1 and unconfirmed[0].details["to_workers"] == 8
    step = store.get_plan(pid).steps[0]
    assert (step.status, step.claimed_by) == (StepStatus.APPLYING, "other")
    # the run that holds it now reads back: the write landed, so it is applied, not rewritten
    clock.at = clock.at + timedelta(seconds=61)
    again = apply_step(store, FaultyScaler({KEY: 8}), policy, pid, sid, run_id="third")
    assert again.outcome == "applied" and again.details["recovered"] is True
    applied = store.audit_events(plan_id=pid, action="step_applied")
    assert [e.details["run_id"] for e in applied] == ["third"]


class LosesClaimBeforeRetry(FaultyScaler):
    """The first write times out; before the retry another run has taken the step over."""

    def __init__(self, store, clock, step_id: int) -> None:  # type: ignore[no-untyped-def]
        super().__init__({KEY: 4}, write_faults=["unreachable"])
        self.store, self.clock, self.step_id = store, clock, step_id

    def read(self, target: TargetSpec) -> LiveReplicas:
        if self.write_calls == 1 and self.store.get_plan(1).steps[0].claimed_by == "slow":
            self.clock.at = self.clock.at + timedelta(seconds=31)
            assert (
                self.store.claim_step(self.step_id, run_id="other", lease_s=60, actor="other")
                is not None
            )
        return super().read(target)


def test_a_run_that_lost_its_claim_between_attempts_writes_no_more() -> None:
    from capplan_core.execution.write import RetryPolicy

    (store, clock), policy = store_at(T0), emails_policy()
    pid = seed_plan(store, policy, (4, 8))
    sid = store.get_plan(pid).steps[0].id
    scaler = LosesClaimBeforeRetry(store, clock, sid)
    out = apply_step(
        store,
        scaler,
        policy,
        pid,
        sid,
        run_id="slow",
        lease_s=30,
        retry=RetryPolicy(attempts=3, backoff_s=0.0, sleep=lambda _s: None),
    )
    assert out.outcome == "deferred" and out.details["lost_claim"] is True
    assert scaler.write_calls == 1 and scaler.replicas[KEY] == 4  # no second write
    assert store.audit_events(plan_id=pid, action="scale") == []


def test_the_claim_is_renewed_before_the_write_from_the_store_clock() -> None:
    (store, clock), policy = store_at(T0), emails_policy()
    pid = seed_plan(store, policy, (4, 8))
    sid = store.get_plan(pid).steps[0].id
    seen: list[object] = []

    class SlowRead(FaultyScaler):
        def read(self, target: TargetSpec) -> LiveReplicas:
            clock.at = clock.at + timedelta(seconds=25)  # a slow read, inside a 30 s lease
            return super().read(target)

        def set_replicas(
            self, target: TargetSpec, replicas: int, *, expected: LiveReplicas | None = None
        ) -> ScaleOutcome:
            seen.append(store.get_plan(pid).steps[0].lease_until)
            return super().set_replicas(target, replicas, expected=expected)

    out = apply_step(store, SlowRead({KEY: 4}), policy, pid, sid, run_id="r", lease_s=30)
    assert out.outcome == "applied"
    # timed from the moment before the write (T0 + 25 s), not from the claim (T0)
    assert seen == [T0 + timedelta(seconds=25 + 30)]


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan, -5.0, 0.0, 0.5, 1e9])
def test_lease_seconds_out_of_bounds_are_refused_naming_the_field(bad: float) -> None:
    with pytest.raises(ValueError, match="lease_s"):
        check_lease_s(bad)


@pytest.mark.parametrize("bad", [math.inf, -1.0, 0.0, math.nan])
def test_apply_step_refuses_a_lease_that_would_free_or_overflow_the_claim(bad: float) -> None:
    (store, _), policy = store_at(T0), emails_policy()
    pid = seed_plan(store, policy, (4, 8))
    with pytest.raises(ValueError, match="lease_s"):
        apply_step(
            store, FaultyScaler({KEY: 4}), policy, pid, store.get_plan(pid).steps[0].id, lease_s=bad
        )
    assert store.get_plan(pid).steps[0].status == StepStatus.PENDING


@pytest.mark.parametrize("bad", [math.inf, -1.0, 0.0])
def test_the_apply_step_and_apply_due_flows_refuse_a_bad_lease_parameter(bad: float) -> None:
    from prefect.exceptions import ParameterTypeError

    from flows.apply_due import apply_due_flow
    from flows.apply_step import apply_step_flow

    for fl, params in (
        (apply_step_flow, {"plan_id": 1, "step_id": 1, "lease_s": bad}),
        (apply_due_flow, {"lease_s": bad}),
    ):
        with pytest.raises(ParameterTypeError, match="lease_s"):
            fl.validate_parameters(params)


@pytest.mark.parametrize("landed", [True, False])
def test_a_step_left_in_doubt_on_a_superseded_plan_is_read_back_and_closed(landed: bool) -> None:
    from capplan_core.execution.due import DueRun, apply_due
    from capplan_core.planning.stored_plan import PlanStatus

    (store, clock), policy = store_at(T0), emails_policy()
    pid = seed_plan(store, policy, (4, 8))
    sid = store.get_plan(pid).steps[0].id
    scaler = FaultyScaler({KEY: 4})

    def die(point: str) -> None:
        if point == ("written" if landed else "applying"):
            raise SystemExit("killed")

    with pytest.raises(SystemExit):
        apply_step(store, scaler, policy, pid, sid, run_id="dead", lease_s=30, hook=die)
    newer = seed_plan(store, policy, (8 if landed else 4, 9))  # approved: supersedes pid
    assert store.get_plan(pid).status == PlanStatus.SUPERSEDED
    assert store.get_plan(pid).steps[0].status == StepStatus.APPLYING  # left in doubt
    clock.at = T0 + timedelta(seconds=31)
    done = apply_due(store, lambda _p, _s: scaler, run=DueRun("sweeper"))
    closed = [d for d in done if d["plan_id"] == pid]
    assert [d["outcome"] for d in closed] == ["applied" if landed else "expired"]
    assert store.get_plan(pid).steps[0].status == (
        StepStatus.APPLIED if landed else StepStatus.EXPIRED
    )
    # read back, never written again: 8 was written once (by the dead run) or never
    assert sum(1 for a in scaler.actions if a.to_replicas == 8) == (1 if landed else 0)
    assert store.get_plan(newer).status == PlanStatus.APPLIED  # the newer plan went on


class TargetLeaseLapses(FaultyScaler):
    """A read slower than the lease (load): the target lease lapses while this run still
    holds the step, and another run takes the target lease before the write."""

    def __init__(self, store, clock, lease_s: float) -> None:  # type: ignore[no-untyped-def]
        super().__init__({KEY: 4})
        self.store, self.clock, self.lease_s = store, clock, lease_s

    def read(self, target: TargetSpec) -> LiveReplicas:
        self.clock.at = self.clock.at + timedelta(seconds=self.lease_s + 1)
        assert self.store.acquire_target_lease(target_lock_key(target), holder="other", lease_s=60)
        return super().read(target)


@pytest.mark.parametrize("other_lets_go", [True, False])
def test_a_run_that_still_holds_its_step_waits_for_the_target_or_releases_the_step(
    other_lets_go: bool,
) -> None:
    # found by CI: under load a run's target lease lapsed while it held the step; another run
    # took the target lease, found the step held and deferred. The run gave up at once and
    # left the step 'applying' under its claim, with nobody left to finish it.
    from capplan_core.execution.write import RetryPolicy

    (store, clock), policy = store_at(T0), emails_policy()
    pid = seed_plan(store, policy, (4, 8))
    sid = store.get_plan(pid).steps[0].id
    scaler = TargetLeaseLapses(store, clock, lease_s=30)
    target_key = target_lock_key(policy.target)
    waits: list[float] = []

    def sleep(s: float) -> None:
        waits.append(s)
        if other_lets_go:  # the other run defers on the held step and lets the target go
            store.release_target_lease(target_key, holder="other")

    out = apply_step(
        store,
        scaler,
        policy,
        pid,
        sid,
        run_id="slow",
        lease_s=30,
        lease_wait_s=0.0 if not other_lets_go else 5.0,
        retry=RetryPolicy(attempts=2, backoff_s=0.0, sleep=sleep),
    )
    step = store.get_plan(pid).steps[0]
    if other_lets_go:
        assert out.outcome == "applied" and scaler.replicas[KEY] == 8, out
        assert step.status == StepStatus.APPLIED and waits
        return
    # the step is released in doubt, not left under a live claim: the next run finishes it
    assert out.outcome == "deferred" and out.details["lost_claim"] is False
    assert "target stayed held" in out.reason and scaler.write_calls == 0
    assert step.status == StepStatus.APPLYING and step.lease_until <= clock.at
    clock.at = clock.at + timedelta(seconds=61)  # the other run's target lease ran out
    again = apply_step(store, FaultyScaler({KEY: 4}), policy, pid, sid, run_id="next")
    assert again.outcome == "applied" and store.get_plan(pid).steps[0].status == "applied"
