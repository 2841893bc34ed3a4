"""Retention rules (pure): the limits' bounds, the cutoffs, and which old plans are kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from capplan_core.retention import (
    OPEN_STEP_STATUSES,
    PlanFacts,
    RetentionError,
    RetentionLimits,
    cutoffs,
    plan_keep_reason,
)

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
CUT = NOW - timedelta(days=30)
OLD = NOW - timedelta(days=40)


def test_cutoffs_are_now_minus_each_limit() -> None:
    cut = cutoffs(
        NOW, RetentionLimits(plans_days=30, audit_days=365, metrics_days=35, flow_runs_days=1.5)
    )
    assert cut.plans == NOW - timedelta(days=30)
    assert cut.audit == NOW - timedelta(days=365)
    assert cut.metrics == NOW - timedelta(days=35)
    assert cut.flow_runs == NOW - timedelta(hours=36)


@pytest.mark.parametrize(
    "field, value",
    [
        ("plans_days", 0.5),
        ("audit_days", 0),
        ("metrics_days", -1),
        ("flow_runs_days", 36_501),
        ("plans_days", float("inf")),
        ("metrics_days", float("nan")),
        ("flow_runs_days", True),
        ("plans_days", "30"),
    ],
)
def test_a_limit_out_of_bounds_names_the_field_and_value(field: str, value: object) -> None:
    kw: dict[str, object] = {field: value}
    if field == "plans_days" and value == float("inf"):
        kw["audit_days"] = 400
    with pytest.raises(
        RetentionError,
        match=rf"{field}: must be a number of days in "
        rf"\[1, 36500\] \(got {value!r}\)",
    ):
        RetentionLimits(**kw)  # type: ignore[arg-type]


def test_audit_rows_must_outlive_plans() -> None:
    with pytest.raises(RetentionError, match=r"audit_days \(10\) must be >= plans_days \(30\)"):
        RetentionLimits(plans_days=30, audit_days=10)
    assert RetentionLimits(plans_days=30, audit_days=30).audit_days == 30


def _facts(**kw: object) -> PlanFacts:
    base: dict[str, object] = {
        "plan_id": 7,
        "queue": "emails",
        "status": "superseded",
        "created_at": OLD,
    }
    return PlanFacts(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kw, reason",
    [
        ({"created_at": CUT + timedelta(seconds=1)}, "younger than the plan limit"),
        ({"created_at": CUT}, "younger than the plan limit"),  # the cutoff itself is kept
        ({"status": "proposed"}, "still proposed"),
        ({"status": "approved"}, "still approved"),
        ({"status": "applied"}, "still applied"),
        ({"open_steps": 2}, "2 open step(s)"),
        ({"newest_of_queue": True}, "the newest plan of queue 'emails'"),
        ({"holds_last_scale": True}, "holds the last applied step of queue 'emails'"),
    ],
)
def test_an_old_plan_is_kept_while_it_matters(kw: dict[str, object], reason: str) -> None:
    assert plan_keep_reason(_facts(**kw), CUT) == reason


@pytest.mark.parametrize(
    "status", ["superseded", "rejected", "expired", "failed", "skipped", "held", "cancelled"]
)
def test_an_old_final_plan_with_nothing_open_goes(status: str) -> None:
    assert plan_keep_reason(_facts(status=status), CUT) is None


def test_open_steps_are_the_ones_a_run_may_still_act_on() -> None:
    assert set(OPEN_STEP_STATUSES) == {"pending", "claimed", "applying"}


@pytest.mark.parametrize(
    "env, message",
    [
        (
            {"CAPPLAN_PLAN_RETENTION_DAYS": "0.5"},
            "CAPPLAN_PLAN_RETENTION_DAYS: Input should be greater than or equal to 1 (got '0.5')",
        ),
        (
            {"CAPPLAN_AUDIT_RETENTION_DAYS": "7"},
            "audit_retention_days (7) must be >= plan_retention_days (30)",
        ),
    ],
)
def test_db_prune_refuses_a_bad_limit_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path, env: dict[str, str], message: str
) -> None:
    from typer.testing import CliRunner

    from capplan_app.settings import get_settings
    from capplan_cli.main import app

    monkeypatch.setenv("CAPPLAN_DATA_DIR", str(tmp_path))
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    try:
        res = CliRunner().invoke(app, ["db", "prune", "--dry-run"])
    finally:
        get_settings.cache_clear()
    assert res.exit_code == 2
    assert message in " ".join(res.output.split())
    assert not (tmp_path / "capplan.db").exists()  # nothing opened
