"""The one sizing search (capplan_core/queueing/search.py) against brute force."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from capplan_core.queueing.search import least_passing


@given(
    threshold=st.integers(0, 300),
    failing=st.integers(-1, 50),
    start=st.integers(-5, 400),
    limit=st.integers(1, 350),
)
def test_least_passing_is_the_least_count_that_passes(
    threshold: int, failing: int, start: int, limit: int
) -> None:
    checked: list[int] = []

    def ok(c: int) -> bool:
        checked.append(c)
        return c >= threshold

    found = least_passing(ok, failing=min(failing, limit - 1), start=start, limit=limit)
    lo = min(failing, limit - 1)
    brute = next((c for c in range(lo + 1, limit + 1) if c >= threshold), None)
    assert found == brute
    assert all(lo < c <= limit for c in checked)  # never outside the range asked
    assert len(checked) <= 2 * max(1, limit - lo).bit_length() + 2
