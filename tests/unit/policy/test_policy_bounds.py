"""Issue 13's policy validation holes: each bad value is refused where the policy enters, with
the policy, the field and the value named (docs/architecture.md, "Policy file")."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from capplan_core.policy import PolicyError, parse_policies


def _policy(**over):
    p = {
        "name": "emails",
        "queue": "emails",
        "target": {"name": "email-worker"},
        "slo": {"wait_p95_seconds": 30},
    }
    p.update(over)
    return p


def _refused(doc) -> str:
    with pytest.raises(PolicyError) as exc:
        parse_policies(doc)
    return str(exc.value)


@pytest.mark.parametrize(
    ("section", "field", "value", "bound"),
    [
        ("scaling", "cooldown_seconds", 1e15, "604800"),
        ("scaling", "startup_seconds", 1e12, "86400"),
        ("scaling", "plan_expiry_seconds", 1e13, "2592000"),
        ("scaling", "min_dwell_seconds", 1e13, "604800"),
        ("approval", "timeout_seconds", 1e13, "2592000"),
        ("slo", "drain_seconds", 1e13, "604800"),
        ("simulation", "restart_seconds", 1e9, "86400"),
    ],
)
def test_durations_beyond_their_bound_are_refused_naming_field_and_value(
    section, field, value, bound
):
    slo = {"wait_p95_seconds": 30}
    doc = {"policies": [_policy(**{section: {**(slo if section == "slo" else {}), field: value}})]}
    msg = _refused(doc)
    assert f"policy 'emails': {section}.{field}" in msg
    assert bound in msg and repr(value) in msg


def test_largest_allowed_durations_still_plan_dates():
    p = parse_policies(
        {
            "policies": [
                _policy(
                    scaling={
                        "cooldown_seconds": 7 * 86400,
                        "startup_seconds": 86400,
                        "plan_expiry_seconds": 30 * 86400,
                        "min_dwell_seconds": 7 * 86400,
                    }
                )
            ]
        }
    )[0]
    assert p.scaling.plan_expiry_seconds == 30 * 86400


@pytest.mark.parametrize("value", [1e21, True, "10", 10.0, 10_001])
@pytest.mark.parametrize(
    ("section", "field"),
    [
        ("scaling", "max_workers"),
        ("scaling", "min_workers"),
        ("scaling", "max_step"),
        ("scaling", "auto_max_change"),
        ("scaling", "scale_down_min_drop"),
        ("simulation", "quota_workers"),
    ],
)
def test_worker_counts_are_strict_bounded_ints(section, field, value):
    msg = _refused({"policies": [_policy(**{section: {field: value}})]})
    assert f"{section}.{field}" in msg and f"(got {value!r})" in msg


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [
        ("forecast", "interval_minutes", "15"),
        ("simulation", "replications", True),
        ("simulation", "seed", 1.5),
        ("scaling", "max_replans", "3"),
        ("scaling", "scale_down_windows", False),
        ("scaling", "cooldown_seconds", "300"),
        ("scaling", "safety_margin", True),
        ("approval", "suspend", "yes"),
        ("slo", "wait_seconds", "30"),
    ],
)
def test_other_numbers_and_flags_refuse_bools_and_strings(section, field, value):
    doc = {"policies": [_policy(**{section: {field: value}})]}
    if section == "slo":
        doc["policies"][0]["slo"] = {field: value}
    msg = _refused(doc)
    assert f"{section}.{field}" in msg and f"(got {value!r})" in msg


def test_ints_and_floats_from_yaml_still_load():
    p = parse_policies(
        {
            "policies": [
                _policy(
                    scaling={
                        "min_workers": 2,
                        "max_workers": 10_000,
                        "cooldown_seconds": 300,
                        "safety_margin": 0,
                        "startup_seconds": 45.5,
                    },
                    simulation={"quota_workers": 8, "seed": 2**63 - 1},
                )
            ]
        }
    )[0]
    assert (p.scaling.max_workers, p.scaling.safety_margin, p.simulation.quota_workers) == (
        10_000,
        0.0,
        8,
    )


@pytest.mark.parametrize(
    ("target", "field"),
    [
        ({"name": "w", "namespace": "../kube-system"}, "target.namespace"),
        ({"name": "w", "namespace": "Workers"}, "target.namespace"),
        ({"name": "w", "namespace": "a" * 64}, "target.namespace"),
        ({"name": "Bad Name!"}, "target.name"),
        ({"name": "-worker"}, "target.name"),
        ({"name": "a" * 254}, "target.name"),
        ({"kind": "scaledobject", "name": "x/y"}, "target.name"),
        ({"kind": "supervisor", "name": "bad name"}, "target.name"),
        ({"kind": "supervisor", "name": "group:proc"}, "target.name"),
        ({"kind": "supervisor", "name": "../etc"}, "target.name"),
    ],
)
def test_kubernetes_and_supervisor_names_are_validated(target, field):
    msg = _refused({"policies": [_policy(target=target)]})
    assert (
        f"policy 'emails': {field}" in msg
        and repr(target.get("namespace", target["name"]))[:40] in msg
    )


def test_valid_targets_of_every_kind_load():
    docs = [
        {"kind": "deployment", "namespace": "workers", "name": "email-worker.v2"},
        {"kind": "scaledobject", "namespace": "a" * 63, "name": "b" * 200},
        {"kind": "supervisor", "name": "Live_Workers-1"},
    ]
    for i, t in enumerate(docs):
        p = parse_policies({"policies": [_policy(target=t, name=f"p{i}")]})[0]
        assert p.target.name == t["name"]


def test_target_key_must_fit_the_store_column():
    msg = _refused(
        {
            "policies": [
                _policy(target={"kind": "scaledobject", "namespace": "n" * 63, "name": "m" * 253})
            ]
        }
    )
    assert "target: kind:namespace/name is 330 characters, at most 300" in msg


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("queue", "q" * 5000, "at most 200 characters"),
        ("queue", "emails; drop table", "should match pattern"),
        ("queue", "", "at least 1 character"),
        ("name", "p" * 201, "at most 200 characters"),
    ],
)
def test_queue_and_policy_names_fit_the_store(field, value, needle):
    msg = _refused({"policies": [_policy(**{field: value})]})
    assert f": {field}: " in msg and needle in msg
    assert len(msg) < 600  # a 5,000-character value is shown shortened


def test_queue_names_with_dots_colons_and_dashes_load():
    p = parse_policies({"policies": [_policy(queue="celery.high:tasks-v2_x")]})[0]
    assert p.queue == "celery.high:tasks-v2_x"


def test_naive_exclude_before_is_refused_and_an_aware_one_loads():
    msg = _refused({"policies": [_policy(exclude_before=datetime(2026, 1, 1))]})
    assert "policy 'emails': exclude_before: Input should have timezone info" in msg
    p = parse_policies({"policies": [_policy(exclude_before="2026-01-01T00:00:00Z")]})[0]
    assert p.exclude_before == datetime(2026, 1, 1, tzinfo=UTC)


def test_calendar_event_must_end_after_it_starts_and_carry_a_time_zone():
    event = {
        "name": "sale",
        "start": "2026-12-02T00:00:00Z",
        "end": "2026-12-01T00:00:00Z",
        "multiplier": 2,
    }
    msg = _refused({"policies": [_policy(forecast={"events": [event]})]})
    assert (
        "forecast.events.0: event 'sale': end (2026-12-01T00:00:00+00:00) must be after "
        "start (2026-12-02T00:00:00+00:00)" in msg
    )
    naive = {**event, "start": "2026-12-01T00:00:00", "end": "2026-12-02T00:00:00"}
    assert "forecast.events.0.start: Input should have timezone info" in _refused(
        {"policies": [_policy(forecast={"events": [naive]})]}
    )


def test_two_policies_may_not_share_a_queue():
    doc = {"policies": [_policy(), _policy(name="emails-2", target={"name": "other"})]}
    assert "policies 'emails' and 'emails-2' share queue 'emails'" in _refused(doc)


def test_two_policies_may_not_share_a_target():
    doc = {"policies": [_policy(), _policy(name="thumbs", queue="thumbs")]}
    assert (
        "policies 'emails' and 'thumbs' share target deployment:default/email-worker"
        in _refused(doc)
    )
    # the same name in another namespace or of another kind is another object
    ok = {
        "policies": [
            _policy(),
            _policy(
                name="thumbs", queue="thumbs", target={"namespace": "b", "name": "email-worker"}
            ),
            _policy(name="t3", queue="t3", target={"kind": "scaledobject", "name": "email-worker"}),
        ]
    }
    assert len(parse_policies(ok)) == 3


def test_supervisor_groups_are_one_target_whatever_the_namespace():
    doc = {
        "policies": [
            _policy(target={"kind": "supervisor", "name": "g", "namespace": "a"}),
            _policy(name="p2", queue="q2", target={"kind": "supervisor", "name": "g"}),
        ]
    }
    assert "policies 'emails' and 'p2' share target supervisor" in _refused(doc)
