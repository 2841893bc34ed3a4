"""An approver's ``max_workers`` cap: when it is allowed, and the steps it leaves.

A cap only narrows a plan. It is refused when it is below the plan's current worker count
(the plan would turn into a scale-down nobody simulated) and when it is zero (a cap never
scales a pool to zero). A cap between the current count and the plan's peak clips every step's
``to_workers``; each later step then starts from the capped count before it, so the drift
check never sees the cap as drift. Refusing, not re-simulating, is the chosen rule
(docs/reliability.md, "Plans, migrations and service restarts").
"""

from __future__ import annotations

from collections.abc import Sequence


def cap_problem(max_workers: int | None, current_workers: int | None) -> str | None:
    """Why ``max_workers`` cannot cap a plan that starts at ``current_workers``; None if it can.

    ``current_workers`` is the plan's starting count (None: unknown, only the zero rule holds).
    """
    if max_workers is None:
        return None
    if max_workers < 1:
        return (
            f"max_workers={max_workers} is refused: a cap never scales the pool to zero "
            "(use a value >= 1, or reject the plan)"
        )
    if current_workers is not None and max_workers < current_workers:
        return (
            f"max_workers={max_workers} is below the plan's current count of "
            f"{current_workers} workers: a cap only narrows a plan's scale-up, it cannot "
            "turn it into an unsimulated scale-down (reject the plan and re-plan, or use "
            f"max_workers >= {current_workers})"
        )
    return None


def capped_steps(
    start_workers: int, steps: Sequence[tuple[int, int]], max_workers: int
) -> list[tuple[int, int]]:
    """The (from_workers, to_workers) of each step under the cap, in order.

    ``start_workers`` is the count before the first step. Each step's target is clipped to
    ``max_workers`` and each step starts where the one before it (as capped) ended.

    Raises:
        ValueError: if :func:`cap_problem` refuses the cap.
    """
    problem = cap_problem(max_workers, start_workers)
    if problem is not None:
        raise ValueError(problem)
    out: list[tuple[int, int]] = []
    at = start_workers
    for _from, to in steps:
        capped = min(to, max_workers)
        out.append((at, capped))
        at = capped
    return out
