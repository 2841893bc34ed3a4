"""Why approving a plan is refused: the one wording the store's transaction, the CLI's
up-front check and the approval form's audit all use."""

from __future__ import annotations

from capplan_core.approval.cap import cap_problem


def stale_plan_problem(plan_id: int, queue: str, newer: tuple[int, str] | None) -> str | None:
    """Why ``plan_id`` may no longer be approved because a newer plan of its queue exists
    (``newer`` = that plan's id and status), or None."""
    if newer is None:
        return None
    return (
        f"plan {plan_id} is no longer the newest plan of queue {queue!r}: plan "
        f"{newer[0]} ({newer[1]}) is newer; decide on that one"
    )


def cap_refusal(plan_id: int, max_workers: int | None, current_workers: int | None) -> str | None:
    """Why the approver's cap is refused for ``plan_id``, or None."""
    problem = cap_problem(max_workers, current_workers)
    return None if problem is None else f"plan {plan_id}: {problem}"


def already_decided(plan_id: int, status: str, decided_by: str | None) -> str:
    """A plan takes one decision: the words for one that has had it (or ended otherwise)."""
    who = f" by {decided_by}" if decided_by else ""
    return f"plan {plan_id} is already {status}{who}"
