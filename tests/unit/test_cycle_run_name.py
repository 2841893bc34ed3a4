"""capacity-plan's run name stays short enough for Prefect's indexed name column on
PostgreSQL (index rows over ~2.7 kB are refused; 1,000 policy names are ~6 kB)."""

from flows.capacity_plan import RUN_NAME_LIMIT, _listed


def test_few_names_are_listed_in_full():
    assert _listed(["emails", "thumbnails"]) == "emails,thumbnails"


def test_a_thousand_names_are_cut_at_a_name_boundary_and_counted():
    names = [f"q{i:04d}" for i in range(1000)]
    text = _listed(names)
    assert text.endswith(",… (1000 policies)")
    shown = text.removesuffix(",… (1000 policies)").split(",")
    assert shown == names[: len(shown)] and len(",".join(shown)) <= RUN_NAME_LIMIT
    assert len(text.encode()) < 2704
