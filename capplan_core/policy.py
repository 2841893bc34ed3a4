"""Scaling policies: the typed, validated contract between an SRE and the planner.

A policy file is YAML with a top-level ``policies`` list (docs/architecture.md). Every field is
validated on load; errors name the policy, the field path and the offending value.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AliasChoices,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

DAY_S = 24 * 3600.0
# upper bounds keep every duration a valid date offset and every count a sane pool size
# (docs/architecture.md, "Policy file"); numbers are strict: `true` or "10" is not a count
MAX_WORKERS = 10_000
MAX_NAME_CHARS = 200  # the store's name/queue columns are String(200)
MAX_TARGET_KEY_CHARS = 300  # the store's target-lease key "kind:namespace/name" is String(300)
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"  # RFC 1123 label: a namespace
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SUPERVISOR_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.@-]*$"  # no space, ':' or '/' (supervisord)
SAFE_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.:@-]*$"  # policy and queue names
#: a queue's instrumentation keys are ``capplan:q:<queue>:<suffix>``, and a worker's heartbeat
#: is ``capplan:q:<queue>:hb:<worker id>`` (capplan_adapters/metrics/instrument.py): a queue
#: named ``<other>:hb`` (or ``<other>:hb:...``) would share keys with ``<other>``'s heartbeats
HEARTBEAT_SEGMENT = "hb"


def _count(default: int | None, *, ge: int, le: int, description: str | None = None) -> Any:
    """A strict integer field: a YAML int, never a bool, a float or a string."""
    return Field(default, strict=True, ge=ge, le=le, description=description)


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
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )


def _seconds(
    default: float | None,
    *,
    le: float,
    gt: float | None = None,
    ge: float | None = None,
    description: str | None = None,
) -> Any:
    """A strict duration in seconds, bounded so that ``now + it`` is always a valid date."""
    return Field(default, strict=True, gt=gt, ge=ge, le=le, description=description)


def _number(
    default: float | None,
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    description: str | None = None,
) -> Any:
    """A strict real number: a YAML int or float, never a bool or a string."""
    return Field(default, strict=True, gt=gt, ge=ge, lt=lt, le=le, description=description)


class TargetSpec(_Strict):
    """The object whose replicas the plan moves.

    ``deployment``/``scaledobject``: a Kubernetes object ``namespace/name`` (namespace an
    RFC 1123 label, name a DNS subdomain). ``supervisor``: a supervisord program group named
    ``name`` (its RUNNING process count; no space, ``:`` or ``/``); ``namespace`` is unused.
    """

    kind: Literal["deployment", "scaledobject", "supervisor"] = "deployment"
    namespace: str = Field("default", min_length=1, max_length=63)
    name: str = Field(..., min_length=1, max_length=253)

    @field_validator("namespace")
    @classmethod
    def _namespace_is_a_label(cls, namespace: str) -> str:
        if not re.fullmatch(DNS_LABEL, namespace):
            raise ValueError(
                "must be an RFC 1123 label (lower-case letters, digits and '-', "
                "starting and ending alphanumeric, at most 63)"
            )
        return namespace

    @field_validator("name")
    @classmethod
    def _name_fits_kind(cls, name: str, info: ValidationInfo) -> str:
        pattern, rule = (
            (
                SUPERVISOR_NAME,
                "a supervisord group name (letters, digits, "
                "'_', '.', '@', '-'; no space, ':' or '/')",
            )
            if info.data.get("kind") == "supervisor"
            else (
                DNS_SUBDOMAIN,
                "a Kubernetes DNS-1123 subdomain (lower-case "
                "letters, digits, '-' and '.', starting and ending alphanumeric)",
            )
        )
        if not re.fullmatch(pattern, name):
            raise ValueError(f"must be {rule}")
        return name

    @model_validator(mode="after")
    def _key_fits_the_store(self) -> TargetSpec:
        key = f"{self.kind}:{self.namespace}/{self.name}"
        if len(key) > MAX_TARGET_KEY_CHARS:
            raise ValueError(
                f"kind:namespace/name is {len(key)} characters, at most {MAX_TARGET_KEY_CHARS}"
            )
        return self

    def key(self) -> tuple[str, str, str]:
        """What identifies the scaled object (a supervisor group has no namespace)."""
        return (self.kind, "" if self.kind == "supervisor" else self.namespace, self.name)


#: a reference to a secret resolved at run time: a Prefect Secret block or an environment
#: variable of the process that runs the flow (docs/security.md); never the secret itself
SECRET_REF = r"^(env:[A-Za-z_][A-Za-z0-9_]{0,199}|prefect-secret:[a-z0-9][a-z0-9-]{0,199})$"
SecretRef = Annotated[
    str,
    Field(
        pattern=SECRET_REF,
        description=("prefect-secret:<Secret block name> or env:<VARIABLE>, resolved at run time"),
    ),
]
#: approver names: what a Prefect Secret block name allows (capplan-approver-<name>)
APPROVER_NAME = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
#: actors capplan itself records (auto-approval, expiry): never a person's name
RESERVED_ACTORS = frozenset({"capplan", "capplan-auto", "capplan-demo-auto", "migration"})


def _no_credentials(url: str | None, field: str) -> str | None:
    """Refuse a URL that carries a password: credentials are given as ``<field>_ref``."""
    if url is None:
        return None
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        has_password = parts.password is not None
    except ValueError as err:
        raise ValueError(f"not a URL: {err}") from None
    if has_password:
        raise ValueError(
            f"carries a password; give a URL with credentials as {field}_ref "
            "(prefect-secret:<block> or env:<VARIABLE>), never inline"
        )
    return url


class SourceSpec(_Strict):
    """Where the queue's metrics come from (``file`` means the metrics file given to the run).

    A URL with credentials is never written here: ``redis_url_ref``/``prometheus_url_ref``
    name where it is kept (a Prefect Secret block or an environment variable), and it is read
    only when the source connects.
    """

    kind: Literal["file", "rq", "stream", "list", "prometheus", "celery"] = "file"
    redis_url: str | None = Field(None, max_length=2000)
    redis_url_ref: SecretRef | None = None
    prometheus_url: str | None = Field(None, max_length=2000)
    prometheus_url_ref: SecretRef | None = None
    stream_group: str | None = None
    promql: dict[str, str] = Field(default_factory=dict)

    @field_validator("redis_url", "prometheus_url")
    @classmethod
    def _plain_url(cls, url: str | None, info: ValidationInfo) -> str | None:
        return _no_credentials(url, str(info.field_name))

    @model_validator(mode="after")
    def _url_or_ref(self) -> SourceSpec:
        for name in ("redis_url", "prometheus_url"):
            if getattr(self, name) and getattr(self, f"{name}_ref"):
                raise ValueError(f"give {name} or {name}_ref, not both")
        return self


class SloSpec(_Strict):
    """Service-level objective terms. Any term left unset does not constrain sizing."""

    wait_seconds: float | None = Field(
        None,
        strict=True,
        gt=0,
        le=7 * DAY_S,
        validation_alias=AliasChoices("wait_seconds", "wait_p95_seconds"),
        description="queue wait (s) that `wait_quantile` of jobs must not exceed",
    )
    wait_quantile: float = _number(0.95, gt=0, lt=1, description="quantile of the wait SLO")
    mean_wait_seconds: float | None = _seconds(None, gt=0, le=7 * DAY_S)
    max_backlog: float | None = _number(
        None, gt=0, le=1e12, description="max expected jobs waiting"
    )
    drain_seconds: float | None = _seconds(
        None, gt=0, le=7 * DAY_S, description="drain current backlog within"
    )
    max_utilization: float | None = _number(None, gt=0, lt=1)
    target_attainment: float | None = _number(
        None,
        gt=0,
        lt=1,
        description="share of planning windows that must meet the SLO (the "
        "safety margin is not added on top: no double counting); unset: derived, max(0.99, "
        "wait_quantile), unless forecast.demand_quantile or scaling.safety_margin is set "
        "(then each window is sized to that quantile x (1 + margin))",
    )
    attainment_mode: Literal["per_window", "pooled"] | None = Field(
        None,
        description="how target_attainment is met: per_window sizes every window to "
        "that demand quantile; pooled spends it as a risk budget over the horizon (the fewest "
        "worker-hours whose expected share of windows meeting the SLO is target_attainment, "
        "no window below 1 - 10 x (1 - target_attainment)); unset: pooled wherever there is "
        "a target (planning/defaults.py)",
    )

    @model_validator(mode="after")
    def _pooled_needs_target(self) -> SloSpec:
        # the derived target needs no field; only a policy on the legacy rule (demand_quantile
        # or safety_margin set, no target) cannot pool: checked on the whole policy
        return self


class ScalingSpec(_Strict):
    """Constraints on the worker count and on how it may move."""

    min_workers: int = _count(1, ge=0, le=MAX_WORKERS)
    max_workers: int = _count(100, ge=1, le=MAX_WORKERS)
    max_step: int = _count(
        MAX_WORKERS,
        ge=1,
        le=MAX_WORKERS,
        description="max workers added or removed per action (default: no "
        "limit beyond min/max workers)",
    )
    cooldown_seconds: float = _seconds(300, ge=0, le=7 * DAY_S)
    safety_margin: float | None = _number(
        None,
        ge=0,
        le=5,
        description="demand headroom of the legacy sizing rule (0.1 when "
        "unset); setting it without slo.target_attainment selects that rule",
    )
    startup_seconds: float = _seconds(60, ge=0, le=DAY_S)
    confidence_threshold: float = _number(0.85, gt=0, le=1)
    scale_down_windows: int = _count(2, ge=1, le=10_000, description="windows demand must stay low")
    scale_down_min_drop: int = _count(
        1, ge=1, le=MAX_WORKERS, description="min workers a scale-down removes"
    )
    min_dwell_seconds: float | None = _seconds(
        None,
        ge=0,
        le=7 * DAY_S,
        description="no scale-down within this long after the last "
        "action, and a scale-down only to a level no window due within this long after it "
        "exceeds; unset: two planning windows, at least 1800 s",
    )
    action_cost_worker_hours: float | None = _number(
        None,
        ge=0,
        le=1e6,
        description="what one scaling action costs, in worker-hours: a "
        "scale-up absorbs a later one when holding the extra workers early costs less, and a "
        "scale-down must save more than two actions (down and back up); unset: 5 minutes of "
        "the plan's typical pool; 0: off",
    )
    max_replans: int = _count(3, ge=0, le=20)
    strategy: Literal["predictive", "hybrid", "auto"] = Field(
        "auto",
        description="predictive: capplan sets the worker count; hybrid: capplan "
        "sets a floor (KEDA minReplicaCount) and the rate trigger's target per replica to what "
        "the floor carries within the SLO, and the autoscaler reacts above it; auto: each plan "
        "takes the one the queue's own previous week chose (the choose-strategy flow, "
        "docs/backtest.md), predictive until there is such evidence and for a shared pool",
    )
    budget_per_hour: float | None = _number(None, gt=0, description="max worker cost per hour")
    auto_max_change: int = _count(
        20, ge=0, le=MAX_WORKERS, description="auto-approve only up to this change"
    )
    plan_expiry_seconds: float = _seconds(3600, gt=0, le=30 * DAY_S)

    @model_validator(mode="after")
    def _min_le_max(self) -> ScalingSpec:
        if self.min_workers > self.max_workers:
            raise ValueError(
                f"min_workers ({self.min_workers}) must be <= max_workers ({self.max_workers})"
            )
        return self


class CalendarEvent(_Strict):
    start: AwareDatetime
    end: AwareDatetime
    multiplier: float = Field(..., strict=True, gt=0, le=1e6)
    name: str = ""

    @model_validator(mode="after")
    def _ends_after_start(self) -> CalendarEvent:
        if self.end <= self.start:
            raise ValueError(
                f"event {self.name!r}: end ({self.end.isoformat()}) must be after "
                f"start ({self.start.isoformat()})"
            )
        return self


class ForecastSpec(_Strict):
    model: Literal[
        "auto",
        "naive",
        "seasonal_naive",
        "moving_average",
        "ewma",
        "holt",
        "holt_winters",
        "holt_winters_mul",
        "mstl",
    ] = "auto"
    horizon_hours: float = _number(6, gt=0, le=24 * 7)
    interval_minutes: int = _count(15, ge=1, le=24 * 60)
    seasonality: list[Seasonality] = Field(default_factory=_daily_only)
    demand_quantile: float | None = _number(
        None,
        gt=0,
        lt=1,
        description="legacy sizing: size each window to this demand "
        "quantile (0.9 when unset); setting it without slo.target_attainment selects the rule",
    )
    nowcast_half_life_hours: float = _number(
        3.0,
        ge=0,
        le=24 * 7,
        description="when the last hour's demand runs off the forecast, "
        "correct the forecast's level, fading with this half-life over the horizon (0 = off)",
    )
    interval_calibration: Literal["pooled", "regime"] = Field(
        "pooled",
        description="pooled: one conformal error distribution; regime: also per "
        "regime (Mondays/Saturdays vs other days, peak vs off-peak) from a two-week replay",
    )
    events: list[CalendarEvent] = Field(default_factory=list)


class CostSpec(_Strict):
    worker_hour: float = _number(0.5, ge=0)
    violation_hour: float = _number(100.0, ge=0)


class SimulationSpec(_Strict):
    replications: int = _count(200, ge=1, le=100_000)
    seed: int = _count(20261126, ge=0, le=2**63 - 1)
    mtbf_seconds: float | None = _seconds(
        None, gt=0, le=365 * DAY_S, description="mean time between worker failures"
    )
    restart_seconds: float = _seconds(30, ge=0, le=DAY_S)
    quota_workers: int | None = _count(
        None, ge=1, le=MAX_WORKERS, description="workers that can actually run"
    )


class ApprovalSpec(_Strict):
    """Who may decide this policy's manual plans, and how long a plan waits (security.md)."""

    timeout_seconds: float = _seconds(3600, gt=0, le=30 * DAY_S)
    suspend: bool = Field(False, strict=True)
    approvers: list[Annotated[str, Field(pattern=APPROVER_NAME)]] = Field(
        default_factory=list,
        max_length=200,
        description="who may approve or reject (each "
        "proves it with their own key: see proof); empty: nobody, a manual plan can only "
        "expire",
    )
    require_distinct_requester: bool = Field(
        False,
        strict=True,
        description="an approver may not be who requested the cycle or "
        "applied the policy version the plan runs under",
    )
    proof: Literal["code", "signature"] = Field(
        "signature",
        description="how an approver proves a decision: 'signature' (the default), an "
        "Ed25519 signature checked with the approver's public key in the store (no approver "
        "secret on any server: docs/security.md); 'code', an HMAC approval code made with a "
        "key the verifier also holds (kept for stores that used it before; a Prefect user "
        "who can read the key's Secret block can forge it)",
    )
    approver_keys: dict[Annotated[str, Field(pattern=APPROVER_NAME)], SecretRef] = Field(
        default_factory=dict,
        description="where an approver's key is kept, by name; default "
        "prefect-secret:capplan-approver-<name>",
    )

    @model_validator(mode="after")
    def _keys_of_listed_approvers(self) -> ApprovalSpec:
        unlisted = sorted(set(self.approver_keys) - set(self.approvers))
        if unlisted:
            raise ValueError(f"approver_keys names {unlisted}, not in approvers")
        if len(set(self.approvers)) != len(self.approvers):
            raise ValueError("approvers lists a name twice")
        reserved = sorted(set(self.approvers) & RESERVED_ACTORS)
        if reserved:
            raise ValueError(f"approvers may not name {reserved}: capplan's own actors")
        return self


def check_queue_name(queue: str) -> str:
    """``queue`` if its Redis keys cannot collide with capplan's own, else ValueError."""
    rest = queue.split(":")[1:]
    if HEARTBEAT_SEGMENT in rest:
        owner = queue[: queue.index(f":{HEARTBEAT_SEGMENT}")]
        raise ValueError(
            f"{queue!r}: a ':{HEARTBEAT_SEGMENT}' segment would share Redis keys with the "
            f"worker heartbeats of queue {owner!r} (capplan:q:{owner}:"
            f"{HEARTBEAT_SEGMENT}:<worker>); rename the queue"
        )
    return queue


#: how a shared pool's free worker picks the next queue (docs/shared-pools.md)
SHARED_DISCIPLINES = ("strict", "round_robin", "weighted")
MAX_SHARED_QUEUES = 20


class PoolQueueSpec(_Strict):
    """One queue of a shared pool: its name, its own SLO and, for ``weighted``, its weight."""

    queue: str = Field(..., min_length=1, max_length=MAX_NAME_CHARS, pattern=SAFE_NAME)
    slo: SloSpec | None = Field(
        None, description="this queue's SLO; unset: the policy's `slo` (for its `queue`)"
    )
    weight: float | None = _number(
        None, gt=0, le=1e6, description="share of picks under `weighted` (default 1)"
    )

    @field_validator("queue")
    @classmethod
    def _no_key_collision(cls, queue: str) -> str:
        return check_queue_name(queue)


class SharedPoolSpec(_Strict):
    """A pool whose workers serve several queues (`rq worker high low`, `celery -Q
    high,low`, Sidekiq's strict or weighted queues), each queue with its own SLO."""

    discipline: Literal["strict", "round_robin", "weighted"] = Field(
        "strict",
        description="strict: the first queue in the list with a job waiting (RQ's default "
        "order); round_robin: the next queue after the one served last; weighted: at random "
        "in proportion to the weights (Sidekiq)",
    )
    queues: list[PoolQueueSpec] = Field(
        ...,
        min_length=2,
        max_length=MAX_SHARED_QUEUES,
        description="every queue the pool serves, in service order (strict: highest first)",
    )

    @model_validator(mode="after")
    def _distinct_queues_and_weights(self) -> SharedPoolSpec:
        names = [c.queue for c in self.queues]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"queues lists {twice} more than once")
        weighted = [c.queue for c in self.queues if c.weight is not None]
        if weighted and self.discipline != "weighted":
            raise ValueError(
                f"queues {weighted} set a weight, which only discipline 'weighted' uses "
                f"(discipline is {self.discipline!r})"
            )
        for c in self.queues:
            if c.slo is not None and _no_slo_term(c.slo):
                raise ValueError(
                    f"queue {c.queue!r}: slo needs at least one term (e.g. wait_p95_seconds)"
                )
        return self


def _no_slo_term(s: SloSpec) -> bool:
    return all(
        v is None
        for v in (
            s.wait_seconds,
            s.mean_wait_seconds,
            s.max_backlog,
            s.drain_seconds,
            s.max_utilization,
        )
    )


class ScalingPolicy(_Strict):
    name: str = Field(..., min_length=1, max_length=MAX_NAME_CHARS, pattern=r"^[A-Za-z0-9_.-]+$")
    queue: str = Field(..., min_length=1, max_length=MAX_NAME_CHARS, pattern=SAFE_NAME)
    enabled: bool = Field(True, strict=True)
    mode: Mode = Mode.MANUAL
    target: TargetSpec
    source: SourceSpec = Field(default_factory=SourceSpec)
    slo: SloSpec = Field(default_factory=SloSpec)
    scaling: ScalingSpec = Field(default_factory=ScalingSpec)
    forecast: ForecastSpec = Field(default_factory=ForecastSpec)
    cost: CostSpec = Field(default_factory=CostSpec)
    simulation: SimulationSpec = Field(default_factory=SimulationSpec)
    approval: ApprovalSpec = Field(default_factory=ApprovalSpec)
    exclude_before: AwareDatetime | None = Field(
        None, description="history before this instant (with a time zone) is not used"
    )

    shared: SharedPoolSpec | None = Field(
        None,
        description="the target's workers serve several queues in a discipline's order, each "
        "with its own SLO (docs/shared-pools.md); unset: the pool serves `queue` alone",
    )

    @field_validator("queue")
    @classmethod
    def _no_key_collision(cls, queue: str) -> str:
        return check_queue_name(queue)

    @property
    def served_queues(self) -> list[str]:
        """Every queue the target's workers serve, in service order: ``queue`` alone, or a
        shared pool's queues."""
        if self.shared is None:
            return [self.queue]
        return [c.queue for c in self.shared.queues]

    def slo_of(self, queue: str) -> SloSpec:
        """The SLO of one served queue: its own in a shared pool, else the policy's."""
        if self.shared is not None:
            for c in self.shared.queues:
                if c.queue == queue:
                    return c.slo if c.slo is not None else self.slo
        if queue != self.queue:
            raise KeyError(f"policy {self.name!r} does not serve queue {queue!r}")
        return self.slo

    @model_validator(mode="after")
    def _shared_pool_names_its_queue(self) -> ScalingPolicy:
        if self.shared is not None and self.queue not in self.served_queues:
            raise ValueError(
                f"shared.queues must list the policy's queue {self.queue!r} (its plans are "
                f"kept under it); it lists {self.served_queues}"
            )
        return self

    @model_validator(mode="after")
    def _has_an_slo(self) -> ScalingPolicy:
        s = self.slo
        if _no_slo_term(s):
            raise ValueError("slo needs at least one term (e.g. wait_p95_seconds)")
        legacy = self.forecast.demand_quantile is not None or self.scaling.safety_margin is not None
        if s.attainment_mode == "pooled" and s.target_attainment is None and legacy:
            raise ValueError(
                "attainment_mode 'pooled' needs slo.target_attainment when "
                "forecast.demand_quantile or scaling.safety_margin is set (the "
                "share of windows the risk budget is spent to)"
            )
        return self


class PolicySet(_Strict):
    policies: Annotated[list[ScalingPolicy], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique_names_queues_targets(self) -> PolicySet:
        # one queue, one target: two policies moving one pool would fight each other
        names: set[str] = set()
        queues: dict[str, str] = {}
        targets: dict[tuple[str, str, str], str] = {}
        for p in self.policies:
            if p.name in names:
                raise ValueError(f"duplicate policy name {p.name!r}")
            names.add(p.name)
            for q in p.served_queues:  # a shared pool's queues too
                if q in queues:
                    raise ValueError(
                        f"policies {queues[q]!r} and {p.name!r} share queue "
                        f"{q!r}; a queue has one policy"
                    )
                queues[q] = p.name
            key = p.target.key()
            if key in targets:
                raise ValueError(
                    f"policies {targets[key]!r} and {p.name!r} share target "
                    f"{p.target.kind}:{p.target.namespace}/{p.target.name}; "
                    "a target has one policy"
                )
            targets[key] = p.name
        return self


def _shown(value: Any, limit: int = 80) -> str:
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f", {len(value)} characters" if isinstance(value, str) else ""
    return f"{text[:limit]}...{size}"


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
        shown = "" if isinstance(value, dict) else f" (got {_shown(value)})"
        if loc and str(loc[-1]).endswith(("_url", "_url_ref")):
            shown = ""  # a URL may carry a password: never echo it
        msg = str(e["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}: {msg}{shown}")
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
