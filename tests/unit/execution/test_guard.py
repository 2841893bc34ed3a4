"""check_step: the pure pre-write guard."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from capplan_core.execution import GuardAction, check_step
from capplan_core.policy import ScalingPolicy

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Step:
    to_workers: int
    from_workers: int = 0


def policy(**scaling: object) -> ScalingPolicy:
    base = {"min_workers": 2, "max_workers": 40, "max_step": 10, "cooldown_seconds": 300}
    return ScalingPolicy.model_validate(
        {
            "name": "emails",
            "queue": "emails",
            "target": {"kind": "deployment", "namespace": "workers", "name": "email-worker"},
            "slo": {"wait_p95_seconds": 30},
            "scaling": {**base, **scaling},
        }
    )


def test_step_at_live_count_is_a_noop_even_in_cooldown() -> None:
    d = check_step(Step(8), 8, 5, NOW - timedelta(seconds=1), NOW, policy())
    assert d.action is GuardAction.NOOP_ALREADY_APPLIED and not d.should_apply
    assert not d.refused


def test_apply_when_everything_holds() -> None:
    d = check_step(Step(12), 5, 5, NOW - timedelta(seconds=301), NOW, policy())
    assert d.action is GuardAction.APPLY and d.should_apply
    assert (d.live_replicas, d.to_replicas) == (5, 12)


def test_first_scaling_ever_has_no_cooldown() -> None:
    assert check_step(Step(12), 5, 5, None, NOW, policy()).should_apply


def test_drift_refuses_when_someone_else_scaled() -> None:
    d = check_step(Step(12), 7, 5, None, NOW, policy())
    assert d.action is GuardAction.REFUSE_DRIFT and d.refused
    assert "7" in d.reason and "5" in d.reason


def test_drift_within_tolerance_applies() -> None:
    assert check_step(Step(12), 6, 5, None, NOW, policy(), drift_tolerance=1).should_apply


def test_scale_up_waits_for_cooldown() -> None:
    d = check_step(Step(12), 5, 5, NOW - timedelta(seconds=100), NOW, policy())
    assert d.action is GuardAction.REFUSE_COOLDOWN
    assert d.retry_after_s == pytest.approx(200)


def test_naive_last_applied_is_utc() -> None:
    last = (NOW - timedelta(seconds=100)).replace(tzinfo=None)
    assert check_step(Step(12), 5, 5, last, NOW, policy()).action is GuardAction.REFUSE_COOLDOWN


def test_change_larger_than_max_step_is_refused() -> None:
    d = check_step(Step(16), 5, 5, None, NOW, policy())
    assert d.action is GuardAction.REFUSE_MAX_STEP and "max_step 10" in d.reason


def test_above_max_workers_is_refused() -> None:
    d = check_step(Step(41), 35, 35, None, NOW, policy())
    assert d.action is GuardAction.REFUSE_MAX_WORKERS and "40" in d.reason


def test_approver_limit_tightens_max_workers() -> None:
    d = check_step(Step(20), 15, 15, None, NOW, policy(), max_workers=18)
    assert d.action is GuardAction.REFUSE_MAX_WORKERS and "approved limit 18" in d.reason


def test_below_min_workers_is_refused() -> None:
    d = check_step(Step(1), 3, 3, None, NOW, policy())
    assert d.action is GuardAction.REFUSE_MIN_WORKERS


@given(
    live=st.integers(0, 60),
    to=st.integers(0, 60),
    expected=st.integers(0, 60),
    since_s=st.one_of(st.none(), st.floats(0, 1000)),
)
def test_apply_only_inside_every_limit(
    live: int, to: int, expected: int, since_s: float | None
) -> None:
    last = None if since_s is None else NOW - timedelta(seconds=since_s)
    d = check_step(Step(to), live, expected, last, NOW, policy())
    if to == live:
        assert d.action is GuardAction.NOOP_ALREADY_APPLIED
    if d.should_apply:
        assert 2 <= to <= 40 and abs(to - live) <= 10 and live == expected
        assert since_s is None or since_s >= 300
    assert d.should_apply or d.refused or d.action is GuardAction.NOOP_ALREADY_APPLIED
