"""What-if scenarios: a changed demand or policy, as typed parameters (Prefect renders a form).

A scenario changes the *unchanged* plan's inputs in these ways, any combination:
- ``multiplier``: every window's forecast demand (mean and spread) times this factor;
- ``spike``: ``size_per_s`` extra jobs/s from ``at`` (a UTC time) or ``offset_minutes`` after
  the planning moment, for ``duration_minutes`` — added to each window by overlap;
- ``slo_wait_s``, ``safety_margin``, ``failure_mtbf_s``: override the policy's values;
- ``workers``: hold this fixed count over the horizon instead of planning (None: plan it);
- ``horizon_hours``: the planning horizon of both sides (like for like).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from capplan_core.forecast import ForecastResult
from capplan_core.forecast.result import central_bounds
from capplan_core.policy import ScalingPolicy
from capplan_core.utc import utc_timestamp


class WhatIfError(ValueError):
    """A scenario value is invalid; the message names the field and the value."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class SpikeSpec(_Strict):
    """A burst of extra demand on top of the forecast."""

    size_per_s: float = Field(..., gt=0, le=1e6, description="extra arrivals, jobs/s")
    at: datetime | None = Field(None, description="spike start (UTC); or use offset_minutes")
    offset_minutes: float | None = Field(
        None, ge=0, le=7 * 24 * 60, description="spike start, minutes after the plan's start"
    )
    duration_minutes: float = Field(30.0, gt=0, le=7 * 24 * 60, description="spike length")

    @model_validator(mode="after")
    def _one_start(self) -> SpikeSpec:
        if self.at is not None and self.offset_minutes is not None:
            raise ValueError("give either spike.at or spike.offset_minutes, not both")
        return self

    def start(self, as_of: pd.Timestamp) -> pd.Timestamp:
        if self.at is not None:
            return utc_timestamp(self.at)
        return as_of + pd.Timedelta(minutes=self.offset_minutes or 0.0)


class WhatIfScenario(_Strict):
    """The what-if flow's parameters: which policy, and what to change."""

    policy: str = Field(..., min_length=1, description="policy name (its queue is planned)")
    horizon_hours: float | None = Field(
        None, gt=0, le=7 * 24, description="planning horizon, h (default: the policy's)"
    )
    multiplier: float = Field(1.0, gt=0, le=100, description="demand multiplier")
    spike: SpikeSpec | None = Field(None, description="extra demand burst")
    slo_wait_s: float | None = Field(None, gt=0, le=86_400, description="wait SLO override, s")
    safety_margin: float | None = Field(None, ge=0, le=5, description="safety margin override")
    failure_mtbf_s: float | None = Field(
        None, gt=0, description="mean time between worker failures, s"
    )
    workers: int | None = Field(
        None, ge=1, le=100_000, description="fixed worker count; empty = plan it"
    )


def parse_scenario(raw: dict[str, Any]) -> WhatIfScenario:
    """Validate a scenario mapping.

    Raises:
        WhatIfError: every invalid field, named with its value.
    """
    try:
        return WhatIfScenario.model_validate(raw)
    except ValidationError as err:
        parts = []
        for e in err.errors():
            where = ".".join(str(x) for x in e["loc"]) or "scenario"
            value = e.get("input")
            shown = "" if isinstance(value, dict) else f" (got {value!r})"
            parts.append(f"{where}: {e['msg']}{shown}")
        raise WhatIfError("invalid what-if scenario: " + "; ".join(parts)) from None


def _deep_update(doc: dict[str, Any], path: tuple[str, str], value: Any) -> None:
    doc.setdefault(path[0], {})[path[1]] = value


def changed_policy(policy: ScalingPolicy, s: WhatIfScenario) -> ScalingPolicy:
    """The policy with the scenario's overrides (SLO wait, margin, MTBF, fixed workers)."""
    doc = policy.model_dump()
    if s.horizon_hours is not None:
        _deep_update(doc, ("forecast", "horizon_hours"), s.horizon_hours)
    if s.slo_wait_s is not None:
        _deep_update(doc, ("slo", "wait_seconds"), s.slo_wait_s)
    if s.safety_margin is not None:
        _deep_update(doc, ("scaling", "safety_margin"), s.safety_margin)
        # a margin only counts outside target_attainment sizing (which adds none on top):
        # asking for one asks for the quantile x (1 + margin) rule
        _deep_update(doc, ("slo", "target_attainment"), None)
        _deep_update(doc, ("slo", "attainment_mode"), "per_window")  # pooled needs a target
    if s.failure_mtbf_s is not None:
        _deep_update(doc, ("simulation", "mtbf_seconds"), s.failure_mtbf_s)
    if s.workers is not None:
        # a fixed pool: no motion, no re-plans adding capacity, no budget cut
        for key, value in (
            ("min_workers", s.workers),
            ("max_workers", s.workers),
            ("max_replans", 0),
            ("budget_per_hour", None),
        ):
            _deep_update(doc, ("scaling", key), value)
    return ScalingPolicy.model_validate(doc)


def horizon_policy(policy: ScalingPolicy, s: WhatIfScenario) -> ScalingPolicy:
    """The unchanged policy, with only the scenario's horizon (so both sides compare)."""
    if s.horizon_hours is None:
        return policy
    doc = policy.model_dump()
    _deep_update(doc, ("forecast", "horizon_hours"), s.horizon_hours)
    return ScalingPolicy.model_validate(doc)


def changed_forecast(fc: ForecastResult, s: WhatIfScenario, as_of: pd.Timestamp) -> ForecastResult:
    """The forecast with the scenario's multiplier and spike applied (jobs/s per window)."""
    mean = np.asarray(fc.mean, dtype=float) * s.multiplier
    scale = np.asarray(fc.scale, dtype=float) * s.multiplier
    if s.spike is not None:
        t0 = s.spike.start(as_of)
        t1 = t0 + pd.Timedelta(minutes=s.spike.duration_minutes)
        step = pd.Timedelta(seconds=fc.interval_s)
        for i, w in enumerate(fc.timestamps):
            overlap = (min(t1, w + step) - max(t0, w)).total_seconds()
            if overlap > 0:
                mean[i] += s.spike.size_per_s * overlap / fc.interval_s
    notes = [
        *fc.notes,
        f"what-if: demand x{s.multiplier:g}"
        + (f", spike +{s.spike.size_per_s:g} jobs/s" if s.spike else ""),
    ]
    bounds = (
        central_bounds(mean, scale, fc.z_sorted, tuple(fc.bounds))
        if len(scale) == len(mean)
        else fc.bounds
    )
    return replace(fc, mean=mean, scale=scale, bounds=bounds, notes=notes)
