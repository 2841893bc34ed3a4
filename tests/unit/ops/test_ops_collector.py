"""The exporter's collector turns the store's answers into the documented capplan_* samples."""

from __future__ import annotations

import pytest
from ops_fake_store import NOW, FakeOpsStore
from prometheus_client import CollectorRegistry, generate_latest

from capplan_cli.exporter import OpsCollector


def samples(store: FakeOpsStore) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(OpsCollector(store, clock=lambda: NOW))
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in reg.collect()
        for s in fam.samples
    }


def test_collector_exposes_cycle_plans_steps_waits_and_forecast_error() -> None:
    got = samples(FakeOpsStore())
    assert got[("capplan_exporter_store_up", ())] == 1.0
    assert got[("capplan_cycle_duration_seconds", ())] == 40.0
    for outcome, n in {"planned": 2, "skipped": 1, "failed": 0, "missing": 1}.items():
        assert got[("capplan_cycle_queues", (("outcome", outcome),))] == n
    assert got[("capplan_plans", (("status", "proposed"),))] == 1.0
    assert got[("capplan_plans", (("status", "failed"),))] == 0.0  # every status, 0 if none
    assert got[("capplan_steps", (("status", "failed"),))] == 1.0
    assert got[("capplan_audit_events", (("action", "scale_failed"),))] == 1.0
    assert got[("capplan_plan_approval_wait_seconds_count", (("decision", "approved"),))] == 1.0
    assert got[("capplan_plan_approval_wait_seconds_sum", (("decision", "approved"),))] == 90.0
    assert (
        got[("capplan_plan_approval_wait_seconds_bucket", (("decision", "approved"), ("le", "60")))]
        == 0.0
    )
    assert (
        got[
            ("capplan_plan_approval_wait_seconds_bucket", (("decision", "approved"), ("le", "300")))
        ]
        == 1.0
    )
    assert got[("capplan_plan_awaiting_approval_oldest_age_seconds", ())] == 1790.0
    # windows at -30 and -15 minutes have passed: errors |10-12| and |10-5|
    assert got[("capplan_forecast_windows_compared", (("queue", "a"),))] == 2.0
    assert got[("capplan_forecast_mae_jobs_per_second", (("queue", "a"),))] == 3.5
    assert got[("capplan_forecast_mape_ratio", (("queue", "a"),))] == pytest.approx(
        (2 / 12 + 5 / 5) / 2
    )


def test_a_broken_store_is_reported_not_raised() -> None:
    got = samples(FakeOpsStore(broken=True))
    assert got[("capplan_exporter_store_up", ())] == 0.0
    assert not any(name.startswith("capplan_cycle") for name, _ in got)


def test_text_exposition_names_follow_prometheus_conventions() -> None:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(OpsCollector(FakeOpsStore(), clock=lambda: NOW))
    text = generate_latest(reg).decode()
    types = dict(line.split()[2:4] for line in text.splitlines() if line.startswith("# TYPE"))
    assert all(n.startswith("capplan_") for n in types)
    assert "counter" not in types.values()  # store state is exposed as gauges
    assert types["capplan_plan_approval_wait_seconds"] == "histogram"
    assert not any(n.endswith("_total") for n in types)


def test_scrapes_within_the_cache_window_share_one_store_read_and_reads_are_bounded() -> None:
    """Every query is bounded by ``plans_limit``, and scrapes closer together than ``cache_s``
    reuse one read of the store (issue 24: a scrape ran unbounded queries every time)."""
    store, clock = FakeOpsStore(), [100.0]
    reg = CollectorRegistry(auto_describe=False)
    reg.register(
        OpsCollector(
            store, clock=lambda: NOW, plans_limit=1, cache_s=15, monotonic=lambda: clock[0]
        )
    )
    first = generate_latest(reg)
    clock[0] += 14.9
    assert generate_latest(reg) == first and store.reads == 1  # within the window: no read
    clock[0] += 0.1
    generate_latest(reg)
    assert store.reads == 2  # the window passed: read again
    approved = [
        line
        for line in first.decode().splitlines()
        if line.startswith("capplan_plan_approval_wait_seconds_count")
    ]
    assert approved  # the one decided plan fits the limit of 1 (the newest first)
