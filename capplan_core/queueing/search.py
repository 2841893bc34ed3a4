"""The least count that passes a monotone check: gallop up, then bisect (the sizing search).

Every sizing question here has the shape "the least worker count c for which ok(c)", with ok
false up to some count and true from there on (a wait, a tail probability or an attainment
that only improves with c). :func:`least_passing` answers it with few checks: from a first
guess it gallops up, doubling the step, until a count passes, then bisects between the last
count that failed and the first that passed. Used by the Erlang sizing
(:mod:`capplan_core.queueing.sizing`), shared pools (:mod:`capplan_core.queueing.pool_sizing`)
and the pooled attainment budget (:mod:`capplan_core.planning.pooled_sizing`).
"""

from __future__ import annotations

from collections.abc import Callable


def least_passing(ok: Callable[[int], bool], *, failing: int, start: int, limit: int) -> int | None:
    """The least c in (``failing``, ``limit``] with ``ok(c)``, for ``ok`` monotone; None when
    ``ok(limit)`` is false.

    Args:
        ok: the check, false below some count and true from it on.
        failing: a count known to fail (or one below the smallest count to try).
        start: the first count tried (clamped into (``failing``, ``limit``]).
        limit: the largest count tried.
    """
    lo, hi, step = failing, min(max(start, failing + 1), limit), 1
    while not ok(hi):
        if hi >= limit:
            return None
        lo, hi = hi, min(hi + step, limit)
        step *= 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi
