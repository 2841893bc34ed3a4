"""The evidence a strategy choice stands on (pure): each strategy's score over the evidence
period, and the day-long replayed stretches a choice keeps so the next daily run replays only
what came since (``planning/strategy_choice.py`` chooses from them; ``backtest/evidence.py``
cuts a replay into them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

Strategy = Literal["predictive", "hybrid"]


@dataclass(frozen=True)
class StrategyEvidence:
    """One strategy's score over the evidence period."""

    attainment: float  # share of windows with demand that met the SLO
    worker_hours: float
    x_oracle: float | None  # worker-hours / the oracle's


@dataclass(frozen=True)
class EvidenceDay:
    """One replayed stretch of the evidence period (a day, when the daily run keeps its
    schedule): the counts a choice sums. A choice keeps its stretches, so the next day's run
    replays only what came since (``strategy_choice.reusable_days``) instead of the whole
    week again."""

    start: datetime  # [start, end), whole windows
    end: datetime
    cadence_s: float  # the planning cadence the stretch was replayed at
    windows_with_demand: int
    predictive_missed: int
    hybrid_missed: int
    predictive_worker_hours: float
    hybrid_worker_hours: float
    oracle_worker_hours: float

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["start"], d["end"] = self.start.isoformat(), self.end.isoformat()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvidenceDay:
        """Raises ``KeyError``/``TypeError``/``ValueError`` for a row that is not one."""
        return cls(
            start=aware_utc(d["start"]),
            end=aware_utc(d["end"]),
            cadence_s=float(d["cadence_s"]),
            windows_with_demand=int(d["windows_with_demand"]),
            predictive_missed=int(d["predictive_missed"]),
            hybrid_missed=int(d["hybrid_missed"]),
            predictive_worker_hours=float(d["predictive_worker_hours"]),
            hybrid_worker_hours=float(d["hybrid_worker_hours"]),
            oracle_worker_hours=float(d["oracle_worker_hours"]),
        )


def evidence_over(days: Sequence[EvidenceDay], strategy: Strategy) -> StrategyEvidence:
    """One strategy's score over ``days``: the same figures one backtest of the whole period
    gives when its stretches are replayed one after another (share of windows with demand
    met, worker-hours summed, against the oracle's summed worker-hours)."""
    busy = sum(d.windows_with_demand for d in days)
    missed = sum(d.predictive_missed if strategy == "predictive" else d.hybrid_missed for d in days)
    hours = sum(
        d.predictive_worker_hours if strategy == "predictive" else d.hybrid_worker_hours
        for d in days
    )
    oracle = sum(d.oracle_worker_hours for d in days)
    return StrategyEvidence(
        attainment=(busy - missed) / max(1, busy),
        worker_hours=hours,
        x_oracle=hours / oracle if oracle > 0 else None,
    )


def aware_utc(text: str) -> datetime:
    at = datetime.fromisoformat(text)
    if at.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return at
