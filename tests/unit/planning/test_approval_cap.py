"""The approver's cap: refused below the current count or at zero; otherwise it clips the steps
and later steps start from the capped counts (issue 12, point 7)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from capplan_core.approval.cap import cap_problem, capped_steps


def test_no_cap_and_caps_at_or_above_the_current_count_are_allowed() -> None:
    assert cap_problem(None, 10) is None
    assert cap_problem(10, 10) is None
    assert cap_problem(50, 10) is None
    assert cap_problem(3, None) is None  # unknown current count: only the zero rule


@pytest.mark.parametrize(
    ("cap", "why"),
    [
        (9, "below the plan's current count of 10"),
        (0, "never scales the pool to zero"),
        (-1, "never scales the pool to zero"),
    ],
)
def test_refused_caps_say_why(cap: int, why: str) -> None:
    problem = cap_problem(cap, 10)
    assert problem is not None and why in problem and f"max_workers={cap}" in problem


def test_a_cap_clips_and_later_steps_start_from_the_capped_count() -> None:
    steps = [(10, 15), (15, 20), (20, 25), (25, 18), (18, 12)]
    assert capped_steps(10, steps, 17) == [(10, 15), (15, 17), (17, 17), (17, 17), (17, 12)]
    assert capped_steps(10, steps, 25) == steps
    assert capped_steps(10, steps, 10) == [(10, 10), (10, 10), (10, 10), (10, 10), (10, 10)]


def test_a_scale_down_plan_is_unchanged_by_a_cap_at_its_current_count() -> None:
    steps = [(10, 8), (8, 6)]
    assert capped_steps(10, steps, 10) == steps


def test_capped_steps_refuses_what_cap_problem_refuses() -> None:
    with pytest.raises(ValueError, match="below the plan's current count"):
        capped_steps(10, [(10, 15)], 9)


def test_the_approval_form_of_a_plan_refuses_a_cap_below_its_current_count() -> None:
    from tasks.approve import ApprovalInput, approval_form

    form = approval_form(10)
    assert issubclass(form, ApprovalInput)
    assert (
        form(decision="approve", approver="a", approval_code="0" * 16, max_workers=12).max_workers
        == 12
    )
    for bad in (9, 0):
        with pytest.raises(ValidationError, match="greater than or equal to 10"):
            form(decision="approve", approver="a", approval_code="0" * 16, max_workers=bad)
    # the schema Prefect validates a resume's input against carries the same floor
    prop = form.model_json_schema()["properties"]["max_workers"]
    assert {"type": "integer", "minimum": 10} in prop["anyOf"]
    # a plan whose current count is unknown still refuses 0
    with pytest.raises(ValidationError):
        approval_form(None)(decision="approve", approver="a", approval_code="0" * 16, max_workers=0)
