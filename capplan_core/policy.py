"""Scaling policies: the typed, validated contract between an SRE and the planner.

A policy file is YAML with a top-level ``policies`` list (docs/architecture.md). Every field is
validated on load; errors name the policy, the field path and the offending value.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)


class PolicyError(ValueError):
    """A policy file or policy value is invalid. The message names the field and the value."""


class Mode(StrEnum):
    AUTO = "auto"
    MANUAL = "manual"
    ADVISORY = "advisory"


Seasonality = Literal["daily", "weekly"]


def _daily_only() -> list[Seasonality]:
    return ["daily"]


class _Strict(BaseModel):
    # allow_inf_nan=False: YAML `.inf` must not slip through as a limit or SLO (it would
    # overflow timedeltas and make sizing meaningless); None already means "no limit"
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              allow_inf_nan=False)


class TargetSpec(_Strict):
    """The object whose replicas the plan moves.

    ``deployment``/``scaledobject``: a Kubernetes object ``namespace/name``. ``supervisor``: a
    supervisord program group named ``name`` (its RUNNING process count); ``namespace`` is unused.
    """

    kind: Literal["deployment", "scaledobject", "supervisor"] = "deployment"
    namespace: str = Field("default", min_length=1)
    name: str = Field(..., min_length=1)


class SourceSpec(_Strict):
    """Where the queue's metrics come from (``file`` means the metrics file given to the run)."""

    kind: Literal["file", "rq", "stream", "list", "prometheus", "celery"] = "file"
    redis_url: str | None = None
    prometheus_url: str | None = None
    stream_group: str | None = None
    promql: dict[str, str] = Field(default_factory=dict)


class SloSpec(_Strict):
    """Service-level objective terms. Any term left unset does not constrain sizing."""

    wait_seconds: float | None = Field(
        None,
        gt=0,
        validation_alias=AliasChoices("wait_seconds", "wait_p95_seconds"),
        description="queue wait (s) that `wait_quantile` of jobs must not exceed",
    )
    wait_quantile: float = Field(0.95, gt=0, lt=1, description="quantile of the wait SLO")
    mean_wait_seconds: float | None = Field(None, gt=0)
    max_backlog: float | None = Field(None, gt=0, description="max expected jobs waiting")
    drain_seconds: float | None = Field(None, gt=0, description="drain current backlog within")
    max_utilization: float | None = Field(None, gt=0, lt=1)
    target_attainment: float | None = Field(
        None, gt=0, lt=1, description="share of planning windows that must meet the SLO; when "
        "set, each window is sized to this quantile of the forecast demand and the safety "
        "margin is not added on top (no double counting)")


class ScalingSpec(_Strict):
    """Constraints on the worker count and on how it may move."""

    min_workers: int = Field(1, ge=0)
    max_workers: int = Field(100, ge=1)
    max_step: int = Field(10, ge=1, description="max workers added or removed per action")
    cooldown_seconds: float = Field(300, ge=0)
    safety_margin: float = Field(0.1, ge=0, le=5)
    startup_seconds: float = Field(60, ge=0)
    confidence_threshold: float = Field(0.85, gt=0, le=1)
    scale_down_windows: int = Field(2, ge=1, description="windows demand must stay low")
    scale_down_min_drop: int = Field(1, ge=1, description="min workers a scale-down removes")
    min_dwell_seconds: float = Field(
        1800, ge=0, description="no scale-down within this long after the last action, and a "
        "scale-down only to a level no window due within this long after it exceeds")
    action_cost_worker_hours: float = Field(
        0.0, ge=0, description="what one scaling action costs, in worker-hours: a scale-up "
        "absorbs a later one when holding the extra workers early costs less, and a "
        "scale-down must save more than two actions (down and back up)")
    max_replans: int = Field(3, ge=0, le=20)
    budget_per_hour: float | None = Field(None, gt=0, description="max worker cost per hour")
    auto_max_change: int = Field(20, ge=0, description="auto-approve only up to this change")
    plan_expiry_seconds: float = Field(3600, gt=0)

    @model_validator(mode="after")
    def _min_le_max(self) -> ScalingSpec:
        if self.min_workers > self.max_workers:
            raise ValueError(
                f"min_workers ({self.min_workers}) must be <= max_workers ({self.max_workers})"
            )
        return self


class CalendarEvent(_Strict):
    start: datetime
    end: datetime
    multiplier: float = Field(..., gt=0)
    name: str = ""


class ForecastSpec(_Strict):
    model: Literal[
        "auto", "naive", "seasonal_naive", "moving_average", "ewma", "holt", "holt_winters",
        "holt_winters_mul", "mstl",
    ] = "auto"
    horizon_hours: float = Field(6, gt=0, le=24 * 7)
    interval_minutes: int = Field(15, ge=1, le=24 * 60)
    seasonality: list[Seasonality] = Field(default_factory=_daily_only)
    demand_quantile: float = Field(0.9, gt=0, lt=1, description="size to this demand quantile")
    nowcast_half_life_hours: float = Field(
        3.0, ge=0, le=24 * 7, description="when the last hour's demand runs off the forecast, "
        "correct the forecast's level, fading with this half-life over the horizon (0 = off)")
    events: list[CalendarEvent] = Field(default_factory=list)


class CostSpec(_Strict):
    worker_hour: float = Field(0.5, ge=0)
    violation_hour: float = Field(100.0, ge=0)


class SimulationSpec(_Strict):
    replications: int = Field(200, ge=1, le=100_000)
    seed: int = Field(20261126, ge=0)
    mtbf_seconds: float | None = Field(None, gt=0, description="mean time between worker failures")
    restart_seconds: float = Field(30, ge=0)
    quota_workers: int | None = Field(None, ge=1, description="workers that can actually run")


class ApprovalSpec(_Strict):
    timeout_seconds: float = Field(3600, gt=0)
    suspend: bool = False


class ScalingPolicy(_Strict):
    name: str = Field(..., min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    queue: str = Field(..., min_length=1)
    enabled: bool = True
    mode: Mode = Mode.MANUAL
    target: TargetSpec
    source: SourceSpec = Field(default_factory=SourceSpec)
    slo: SloSpec = Field(default_factory=SloSpec)
    scaling: ScalingSpec = Field(default_factory=ScalingSpec)
    forecast: ForecastSpec = Field(default_factory=ForecastSpec)
    cost: CostSpec = Field(default_factory=CostSpec)
    simulation: SimulationSpec = Field(default_factory=SimulationSpec)
    approval: ApprovalSpec = Field(default_factory=ApprovalSpec)
    exclude_before: datetime | None = None

    @model_validator(mode="after")
    def _has_an_slo(self) -> ScalingPolicy:
        s = self.slo
        if all(
            v is None
            for v in (s.wait_seconds, s.mean_wait_seconds, s.max_backlog, s.drain_seconds,
                      s.max_utilization)
        ):
            raise ValueError("slo needs at least one term (e.g. wait_p95_seconds)")
        return self


class PolicySet(_Strict):
    policies: Annotated[list[ScalingPolicy], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique_names(self) -> PolicySet:
        seen: set[str] = set()
        for p in self.policies:
            if p.name in seen:
                raise ValueError(f"duplicate policy name {p.name!r}")
            seen.add(p.name)
        return self


def _format_validation_error(err: ValidationError, raw: Any) -> str:
    lines = []
    for e in err.errors():
        loc = list(e["loc"])
        where = ".".join(str(x) for x in loc) or "<root>"
        # name the policy, not just its index, where we can
        if len(loc) >= 2 and loc[0] == "policies" and isinstance(loc[1], int):
            try:
                pname = raw["policies"][loc[1]].get("name", f"#{loc[1]}")
            except Exception:  # noqa: BLE001 - raw may be any shape
                pname = f"#{loc[1]}"
            where = f"policy {pname!r}: " + ".".join(str(x) for x in loc[2:])
        value = e.get("input")
        shown = "" if isinstance(value, dict) else f" (got {value!r})"
        lines.append(f"{where}: {e['msg']}{shown}")
    return "invalid policy: " + "; ".join(lines)


def parse_policies(raw: Any) -> list[ScalingPolicy]:
    """Validate an already-parsed policy document (a mapping with ``policies``)."""
    if not isinstance(raw, dict) or "policies" not in raw:
        raise PolicyError("invalid policy: the document needs a top-level 'policies' list")
    try:
        return list(PolicySet.model_validate(raw).policies)
    except ValidationError as err:
        raise PolicyError(_format_validation_error(err, raw)) from None


def load_policies(path: str | Path) -> list[ScalingPolicy]:
    """Read and validate a YAML policy file.

    Raises:
        PolicyError: unreadable file, bad YAML, or any invalid field (named in the message).
    """
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as err:
        raise PolicyError(f"cannot read policy file {str(p)!r}: {err.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise PolicyError(f"policy file {str(p)!r} is not valid YAML: {err}") from None
    return parse_policies(raw)
