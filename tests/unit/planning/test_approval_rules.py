"""What the policy decides about a new plan before anybody is asked (issue 21): nothing waits
for a person who cannot act, and a pool falling behind is never frozen to wait for one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from capplan_core.approval.rules import Verdict, falling_behind, policy_verdict
from capplan_core.policy import ScalingPolicy

NOW = datetime(2026, 12, 6, 15, 18, tzinfo=UTC)


def _policy(
    mode: str = "auto", approvers: list[str] | None = None, **scaling: Any
) -> ScalingPolicy:
    return ScalingPolicy.model_validate(
        {
            "name": "q",
            "queue": "q",
            "mode": mode,
            "target": {"namespace": "w", "name": "q"},
            "slo": {"wait_p95_seconds": 30},
            "scaling": {"min_workers": 1, "max_workers": 40, "auto_max_change": 5, **scaling},
            "forecast": {"interval_minutes": 15},
            "approval": {"approvers": approvers or []},
        }
    )


def _decision(
    steps: list[tuple[int, int, float]],
    *,
    current: int = 4,
    reasons: list[str] | None = None,
    achievable: bool = True,
    confidence: float = 0.95,
) -> Any:
    """A decision whose plan has ``steps`` = (from, to, minutes from NOW)."""
    planned = [
        SimpleNamespace(from_workers=a, to_workers=b, execute_at=NOW + timedelta(minutes=m))
        for a, b, m in steps
    ]
    proposal = SimpleNamespace(
        steps=planned,
        current_workers=current,
        target_workers=max([current] + [b for _, b, _ in steps]),
        reasons=reasons or [],
    )
    return SimpleNamespace(
        proposal=proposal,
        confidence=confidence,
        slo_achievable=achievable,
        attempts=3,
        reasons=list(reasons or []),
    )


ANOMALY = (
    "recent demand anomaly: 11.8 jobs/s at 15:00 against 4.1 expected (robust z 7.2): "
    "auto approval downgraded to manual"
)


@pytest.mark.parametrize("mode", ["auto", "manual", "advisory"])
def test_a_plan_that_changes_nothing_is_recorded_whatever_the_mode(mode: str) -> None:
    v = policy_verdict(_policy(mode), _decision([]), now=NOW)
    assert v.verdict == Verdict.RECORD and "changes nothing (4 -> 4" in v.reason


def test_auto_inside_its_limits_is_approved() -> None:
    v = policy_verdict(_policy(), _decision([(4, 7, 30)]), now=NOW)
    assert v.verdict == Verdict.APPROVE and v.alert is None


def test_auto_that_cannot_meet_the_slo_is_approved_at_its_limit_with_an_alert() -> None:
    why = (
        "SLO not achievable: max_workers 8 is below the 12 workers the SLO (with margin) "
        "needs at 2026-12-06T16:00:00+00:00 (3 of 24 window(s) capped)"
    )
    d = _decision([(4, 8, 0)], reasons=[why], achievable=False, confidence=0.41)
    v = policy_verdict(_policy(max_workers=8), d, now=NOW)
    assert v.verdict == Verdict.APPROVE
    assert v.alert is not None and "max_workers 8 is below the 12 workers" in v.alert
    assert "4 -> 8 workers" in v.alert


def test_auto_with_a_low_confidence_alone_is_approved_with_an_alert_naming_it() -> None:
    d = _decision([(4, 6, 0)], achievable=False, confidence=0.62)
    v = policy_verdict(_policy(confidence_threshold=0.85), d, now=NOW)
    assert v.verdict == Verdict.APPROVE and "confidence 0.62 is below the threshold 0.85" in (
        v.alert or ""
    )


def test_a_pool_falling_behind_gets_what_auto_may_add_now_despite_an_anomaly() -> None:
    d = _decision([(4, 9, 0), (9, 12, 30)], reasons=[ANOMALY])
    assert falling_behind(d, NOW, 900)
    v = policy_verdict(_policy(approvers=["alice"]), d, now=NOW)
    assert v.verdict == Verdict.APPROVE_CAPPED and v.cap == 9  # 4 + auto_max_change 5
    assert "11.8 jobs/s" in v.reason and v.alert is not None


def test_a_fallback_to_a_person_names_its_cause_when_there_are_approvers() -> None:
    d = _decision([(4, 12, 120)], reasons=[ANOMALY])  # needed in two hours, not now
    assert not falling_behind(d, NOW, 900)
    v = policy_verdict(_policy(approvers=["alice"]), d, now=NOW)
    assert v.verdict == Verdict.ASK_PERSON
    assert v.reason == f"falls back to manual approval: {ANOMALY}"


def test_a_fallback_with_no_approvers_holds_the_pool_and_says_why() -> None:
    big = "change of 12 workers exceeds auto_max_change 5: auto approval downgraded to manual"
    d = _decision([(4, 16, 120)], reasons=[big])
    v = policy_verdict(_policy(), d, now=NOW)
    assert v.verdict == Verdict.HOLD
    assert "held at 4 workers" in v.reason and big in v.reason and "no approvers" in v.reason


def test_a_scale_down_beyond_auto_limits_is_never_capped_as_falling_behind() -> None:
    big = "change of 10 workers exceeds auto_max_change 5: auto approval downgraded to manual"
    d = _decision([(14, 4, 0)], current=14, reasons=[big])
    assert not falling_behind(d, NOW, 900)
    assert policy_verdict(_policy(), d, now=NOW).verdict == Verdict.HOLD


def test_manual_asks_a_person_only_when_one_is_listed() -> None:
    d = _decision([(4, 7, 30)])
    assert policy_verdict(_policy("manual", ["bob"]), d, now=NOW).verdict == Verdict.ASK_PERSON
    held = policy_verdict(_policy("manual"), d, now=NOW)
    assert held.verdict == Verdict.HOLD and "approval.approvers is empty" in held.reason


def test_advisory_is_never_executed() -> None:
    assert (
        policy_verdict(_policy("advisory"), _decision([(4, 7, 0)]), now=NOW).verdict
        == Verdict.ADVISORY
    )
