"""``scaling.strategy: auto``: each queue's strategy chosen from its own last week (pure).

The evidence is a backtest of the queue's previous week (:func:`run_backtest` on its stored
history, fitted at each origin only on the past): predictive against hybrid, each scored with
exact Erlang C on the demand that really came. :func:`choose_strategy` turns the two scores
into a choice and says why; the ``choose-strategy`` flow stores it (an audit row,
``strategy-chosen``) and every plan of an ``auto`` policy reads the newest one back
(:func:`effective_strategy`) into its details. The scaler carries out the plan's strategy, not
the policy's word ``auto`` (docs/backtest.md, "Strategy by evidence").

The rule, chosen on Taylor's tune weeks and confirmed on every other week of every series
(``bench/bench_rolling.py``):

- hybrid when predictive missed the 99 % goal and hybrid did not;
- hybrid when it met at least predictive's attainment at no more than 1 % more worker-hours;
- else predictive (the cheaper, calmer one).

A change of strategy must clear a band of :data:`SWITCH_BAND` around that 1 %: a queue on
hybrid keeps it up to 1.5 % more worker-hours, a queue on predictive moves to hybrid only at
0.5 % or less. Without it a week whose two costs differ by about 1 % flipped the queue's
strategy from one day to the next on a tie (Taylor's week of 26 June: 1.0114x in one replay,
1.0100x in another of the same week).

``auto`` is the default. With no evidence (a new queue, a changed policy, a choice older than
:data:`MAX_CHOICE_AGE`) the plan is hybrid where the target can react above a floor (a KEDA
ScaledObject) and predictive elsewhere, and says which evidence is missing; a shared pool is
predictive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from capplan_core.planning.stored_plan import AuditEntry
from capplan_core.planning.strategy_evidence import (
    EvidenceDay,
    Strategy,
    StrategyEvidence,
    aware_utc,
    evidence_over,
)
from capplan_core.policy import ScalingPolicy

#: the share of windows with demand that must meet the SLO (issue 22's goal)
GOAL_ATTAINMENT = 0.99
#: hybrid may cost this much more than predictive and still be chosen when no worse
HYBRID_COST_TOLERANCE = 1.01
#: the band around the tolerance a change of strategy must clear (hysteresis: a tie keeps the
#: strategy the queue has)
SWITCH_BAND = 0.005
#: the evidence period, in days: the queue's previous week (choose-strategy's default)
EVIDENCE_DAYS = 7.0
#: a choice older than this is no evidence any more (the daily run has stopped)
MAX_CHOICE_AGE = timedelta(days=8)
#: the audit action a stored choice is kept under
AUDIT_ACTION = "strategy-chosen"


def choose_strategy(
    predictive: StrategyEvidence,
    hybrid: StrategyEvidence,
    previous: Strategy | None = None,
) -> tuple[Strategy, str]:
    """The strategy for the coming week from the evidence period's two scores, and why (the
    shares to two decimals: 98.96 % is under the goal, and must not read as 99.0 %).

    ``previous``: the strategy the queue's plans carry out now (its last choice, or the
    default without evidence); a change from it must clear :data:`SWITCH_BAND` (None: the
    plain rule, no band)."""
    p, h = predictive, hybrid
    if p.attainment < GOAL_ATTAINMENT <= h.attainment:
        return "hybrid", (
            f"predictive met the SLO in {p.attainment:.2%} of windows (< 99 %), "
            f"hybrid in {h.attainment:.2%}"
        )
    band = {"hybrid": SWITCH_BAND, "predictive": -SWITCH_BAND, None: 0.0}[previous]
    tolerance = HYBRID_COST_TOLERANCE + band
    ratio = h.worker_hours / p.worker_hours if p.worker_hours > 0 else 1.0
    no_worse = h.attainment >= p.attainment
    if no_worse and h.worker_hours <= tolerance * p.worker_hours:
        why = (
            f"hybrid met {h.attainment:.2%} >= predictive's {p.attainment:.2%} at "
            f"{ratio:.3f}x its worker-hours"
        )
        if ratio > HYBRID_COST_TOLERANCE:
            why += f" (kept: within {tolerance - 1:.1%}, the band a change from hybrid must clear)"
        return "hybrid", why
    why = (
        f"predictive met {p.attainment:.2%} at {_x(p)} the oracle's worker-hours, "
        f"hybrid {h.attainment:.2%} at {_x(h)}"
    )
    if no_worse and ratio <= HYBRID_COST_TOLERANCE:
        why += (
            f" (kept: hybrid's {ratio:.3f}x predictive's worker-hours is not under "
            f"{tolerance:.3f}x, the band a change from predictive must clear)"
        )
    return "predictive", why


def _x(e: StrategyEvidence) -> str:
    return "?" if e.x_oracle is None else f"{e.x_oracle:.3f}x"


@dataclass(frozen=True)
class StrategyChoice:
    """One queue's choice, with the evidence it stands on (what the audit row keeps)."""

    policy: str
    policy_version: int | None
    chosen: Strategy
    why: str
    start: datetime  # the evidence period [start, end)
    end: datetime
    chosen_at: datetime
    predictive: StrategyEvidence
    hybrid: StrategyEvidence
    #: the replayed stretches the figures sum (empty in a row written before they were kept)
    days: tuple[EvidenceDay, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("start", "end", "chosen_at"):
            d[k] = d[k].isoformat()
        d["days"] = [day.as_dict() for day in self.days]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StrategyChoice:
        """Raises ``KeyError``/``TypeError``/``ValueError`` for a row that is not a choice."""
        if d["chosen"] not in ("predictive", "hybrid"):
            raise ValueError(f"chosen: expected predictive or hybrid, got {d['chosen']!r}")
        return cls(
            policy=str(d["policy"]),
            policy_version=None if d.get("policy_version") is None else int(d["policy_version"]),
            chosen=d["chosen"],
            why=str(d["why"]),
            start=aware_utc(d["start"]),
            end=aware_utc(d["end"]),
            chosen_at=aware_utc(d["chosen_at"]),
            predictive=StrategyEvidence(**d["predictive"]),
            hybrid=StrategyEvidence(**d["hybrid"]),
            days=tuple(EvidenceDay.from_dict(day) for day in d.get("days") or ()),
        )


def stored_choice(details: dict[str, Any] | None) -> StrategyChoice | None:
    """The choice an audit row keeps, or None when the row is not a readable choice (the
    plan then takes the default without evidence, saying there is none)."""
    if not details:
        return None
    try:
        return StrategyChoice.from_dict(details)
    except (KeyError, TypeError, ValueError):
        return None


def plan_strategy_of(policy: ScalingPolicy, details: dict[str, Any]) -> Strategy:
    """The strategy a stored plan carries out: the policy's, or for ``auto`` the one the plan
    recorded (``details["strategy"]``, covered by the approval signature's digest)."""
    stated = policy.scaling.strategy
    if stated != "auto":
        return stated
    return "hybrid" if details.get("strategy") == "hybrid" else "predictive"


def choice_from_days(
    days: Sequence[EvidenceDay],
    *,
    policy: ScalingPolicy,
    policy_version: int | None,
    chosen_at: datetime,
    target_reacts: bool = True,
    previous: Strategy | None = None,
) -> StrategyChoice:
    """The choice the replayed stretches ``days`` (oldest first, at least one) give, kept
    with them so the next run replays only what comes after the last one. ``previous``: the
    strategy of the queue's last choice (:func:`choose_strategy`'s band).

    ``target_reacts``: the target can carry out hybrid (a KEDA ScaledObject, whose rate
    trigger reacts above the floor); when it cannot, the choice is predictive and says
    what hybrid would have needed."""
    if not days:
        raise ValueError("days: a choice needs at least one replayed stretch")
    p, h = evidence_over(days, "predictive"), evidence_over(days, "hybrid")
    chosen, why = choose_strategy(p, h, previous)
    if chosen == "hybrid" and not target_reacts:
        chosen, why = (
            "predictive",
            (
                f"hybrid would be chosen ({why}), but the target "
                f"{policy.target.kind}:{policy.target.namespace}/{policy.target.name} has no "
                "autoscaler to react above a floor: hybrid needs a KEDA ScaledObject with a "
                "trigger named capplan-rate (target.kind: scaledobject, or CAPPLAN_SCALER=keda)"
            ),
        )
    return StrategyChoice(
        policy=policy.name,
        policy_version=policy_version,
        chosen=chosen,
        why=why,
        start=days[0].start,
        end=days[-1].end,
        chosen_at=chosen_at,
        predictive=p,
        hybrid=h,
        days=tuple(days),
    )


def reusable_days(
    choice: StrategyChoice | None,
    *,
    policy: str,
    policy_version: int | None,
    start: datetime,
    end: datetime,
    cadence_s: float,
) -> tuple[EvidenceDay, ...]:
    """The stretches of the queue's last choice that a new choice over [start, end) can keep:
    made for this policy at this version, at this cadence, and inside the period. The run
    then replays only [last kept end, end)."""
    if choice is None or policy_version is None:
        return ()
    if choice.policy != policy or choice.policy_version != policy_version:
        return ()  # a changed policy is new: its old stretches are no evidence for it
    kept: list[EvidenceDay] = []
    for day in choice.days:
        if day.start >= start and day.end <= end and day.cadence_s == cadence_s:
            if kept and day.start != kept[-1].end:
                kept = []  # keep one unbroken run of stretches, the newest
            kept.append(day)
    return tuple(kept)


def target_reacts(policy: ScalingPolicy, scaler: str) -> bool:
    """The target can carry out hybrid: a KEDA ScaledObject (``target.kind: scaledobject``, or
    every Kubernetes target under ``CAPPLAN_SCALER=keda``), whose triggers react above the
    floor capplan sets. A Deployment or a supervisord group has nothing to react."""
    return policy.target.kind == "scaledobject" or scaler == "keda"


#: why an auto plan without evidence takes hybrid on a target that can react: the rolling
#: benchmark's tune weeks chose it, and every other week confirmed it
NO_EVIDENCE_HYBRID = (
    "hybrid, the default without evidence where the target reacts above its floor (in the "
    "rolling benchmark hybrid met at least predictive's share of windows in 22 of 22 weeks, "
    "at 0.2-1.2 % more worker-hours; docs/backtest.md)"
)


def effective_strategy(
    policy: ScalingPolicy,
    choice: StrategyChoice | None,
    *,
    policy_version: int | None,
    now: datetime,
    target_reacts: bool = False,
) -> tuple[Strategy, str]:
    """The strategy a plan made at ``now`` carries out, and why.

    A policy that names ``predictive`` or ``hybrid`` gets it. An ``auto`` policy gets the
    newest stored choice made for this policy at this version within :data:`MAX_CHOICE_AGE`.
    Without one (which evidence is missing is said) it gets hybrid where ``target_reacts``
    (:func:`target_reacts`), else predictive; a shared pool is always predictive (its
    backtest has no hybrid)."""
    stated = policy.scaling.strategy
    if stated == "hybrid":
        return "hybrid", (
            "scaling.strategy: hybrid — a planned floor (KEDA minReplicaCount) with the "
            "autoscaler reacting above it to what the forecast did not know"
        )
    if stated == "predictive":
        return "predictive", "scaling.strategy: predictive — capplan sets the count"
    if policy.shared is not None:
        return "predictive", (
            "scaling.strategy: auto, a shared pool: predictive (its backtest has no hybrid "
            "to choose from)"
        )
    missing = _missing_evidence(policy, choice, policy_version, now)
    if missing is None:
        assert choice is not None
        return choice.chosen, (
            f"scaling.strategy: auto — {choice.chosen}, chosen "
            f"{choice.chosen_at:%Y-%m-%d %H:%M} UTC from the backtest of "
            f"{choice.start:%Y-%m-%d}..{choice.end:%Y-%m-%d}: {choice.why}"
        )
    if target_reacts:
        return "hybrid", f"scaling.strategy: auto, {missing}: {NO_EVIDENCE_HYBRID}"
    return "predictive", (
        f"scaling.strategy: auto, {missing}: predictive (the target is a "
        f"{policy.target.kind}, with no autoscaler to react above a floor)"
    )


def _missing_evidence(
    policy: ScalingPolicy,
    choice: StrategyChoice | None,
    policy_version: int | None,
    now: datetime,
) -> str | None:
    """Why there is no usable choice for this plan, or None when there is one."""
    if policy_version is None:
        return "a policy that is not stored (a preview of a file) has no backtested week"
    if choice is None or choice.policy != policy.name:
        return "no evidence yet (no choose-strategy run for this policy)"
    if choice.policy_version != policy_version:
        return (
            f"the newest choice was made for policy version {choice.policy_version}, not "
            f"{policy_version} (a changed policy's week is not backtested yet)"
        )
    age = now - choice.chosen_at
    if age > MAX_CHOICE_AGE:
        return (
            f"the newest choice is {age.total_seconds() / 86400:.1f} days old "
            f"(> {MAX_CHOICE_AGE.days}; choose-strategy has not run since)"
        )
    return None


class ChoiceReader(Protocol):
    """A store that keeps the choices (the plan store's audit rows)."""

    def latest_audit_event(self, action: str, *, queue: str) -> AuditEntry | None: ...


def stored_strategy(
    store: ChoiceReader,
    policy: ScalingPolicy,
    policy_version: int | None,
    now: datetime,
    scaler: str,
) -> tuple[Strategy, str]:
    """What a plan of ``policy`` made at ``now`` carries out, from the newest choice stored
    for its queue (``auto`` only) and the configured scaler (``CAPPLAN_SCALER``)."""
    choice = None
    if policy.scaling.strategy == "auto":
        entry = store.latest_audit_event(AUDIT_ACTION, queue=policy.queue)
        choice = None if entry is None else stored_choice(entry.details)
    return effective_strategy(
        policy,
        choice,
        policy_version=policy_version,
        now=now,
        target_reacts=target_reacts(policy, scaler),
    )
