"""Issue 15's policy fields: ``scaling.strategy`` and ``forecast.interval_calibration``."""

from __future__ import annotations

import pytest

from capplan_core.policy import PolicyError, parse_policies


def _doc(**over):  # type: ignore[no-untyped-def]
    p = {
        "name": "emails",
        "queue": "emails",
        "target": {"name": "email-worker"},
        "slo": {"wait_p95_seconds": 30},
    }
    p.update(over)
    return {"policies": [p]}


def test_defaults_are_auto_and_pooled() -> None:
    (pol,) = parse_policies(_doc())
    assert pol.scaling.strategy == "auto"  # predictive until its own week chooses
    assert pol.forecast.interval_calibration == "pooled"


def test_hybrid_and_regime_load() -> None:
    (pol,) = parse_policies(
        _doc(scaling={"strategy": "hybrid"}, forecast={"interval_calibration": "regime"})
    )
    assert (pol.scaling.strategy, pol.forecast.interval_calibration) == ("hybrid", "regime")


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [("scaling", "strategy", "reactive"), ("forecast", "interval_calibration", "hourly")],
)
def test_unknown_values_are_refused_naming_the_field(section: str, field: str, value: str) -> None:
    with pytest.raises(PolicyError) as exc:
        parse_policies(_doc(**{section: {field: value}}))
    assert f"{section}.{field}" in str(exc.value) and value in str(exc.value)
