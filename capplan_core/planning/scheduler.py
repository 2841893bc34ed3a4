"""Turn per-window worker needs into scaling steps that respect the policy's motion limits.

Rules (docs/architecture.md, "Safety rules"):
- startup lead: a scale-up is executed ``startup_seconds`` before the window that needs it
  (never before ``now``), so the new workers are ready when the demand arrives;
- max step: no action adds or removes more than ``max_step`` workers. A bigger jump becomes
  several actions, started early enough (one cooldown apart) that the last lands on time;
- cooldown: actions are at least ``cooldown_seconds`` apart, also after ``last_scale_at``.
  Because the next action cannot come sooner, every action already covers all windows due
  before the cooldown ends — so a plan never goes up-down-up (or down-up) within a cooldown;
- hysteresis: a scale-down happens only if the need stays at or below the new level for
  ``scale_down_windows`` windows and the drop is at least ``scale_down_min_drop`` workers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from capplan_core.policy import ScalingSpec


@dataclass(frozen=True)
class RawStep:
    """A step before its human-readable reason is written."""

    execute_at: datetime
    from_workers: int
    to_workers: int
    window_index: int
    direction: str                         # "up" | "down"
    covers: list[int]                      # windows whose need set the level
    adjustments: list[dict[str, object]] = field(default_factory=list)


@dataclass
class _State:
    workers: int
    earliest: datetime                     # the next action may not happen before this
    steps: list[RawStep] = field(default_factory=list)
    holds: dict[int, str] = field(default_factory=dict)   # window -> why a scale-down waited
    splitting_down: bool = False     # the last action was a scale-down cut short by max_step


def schedule_steps(
    needs: list[int], starts: list[datetime], *, now: datetime, current_workers: int,
    scaling: ScalingSpec, last_scale_at: datetime | None = None,
) -> tuple[list[RawStep], dict[int, str]]:
    """Steps (in time order) and, per window, why a possible scale-down was held back."""
    cooldown = timedelta(seconds=scaling.cooldown_seconds)
    earliest = now if last_scale_at is None else max(now, last_scale_at + cooldown)
    st = _State(workers=int(current_workers), earliest=earliest)
    lead = timedelta(seconds=scaling.startup_seconds)
    due_up = [max(now, t - lead) for t in starts]
    i = 0
    while i < len(needs):
        if needs[i] > st.workers:
            _scale_up(st, i, needs, due_up, now, scaling)
        elif not (needs[i] < st.workers
                  and _scale_down(st, i, needs, starts, due_up, now, scaling)):
            i += 1
    return st.steps, st.holds


def _scale_up(st: _State, i: int, needs: list[int], due_up: list[datetime], now: datetime,
              sc: ScalingSpec) -> None:
    cooldown = timedelta(seconds=sc.cooldown_seconds)
    actions_needed = math.ceil((needs[i] - st.workers) / sc.max_step)
    ideal = max(now, due_up[i] - (actions_needed - 1) * cooldown)
    execute_at = max(st.earliest, ideal)
    covers = [j for j in range(i, len(needs)) if j == i or due_up[j] < execute_at + cooldown]
    level = max(needs[j] for j in covers)
    to = min(st.workers + sc.max_step, level)
    adj: list[dict[str, object]] = []
    if level > needs[i]:
        adj.append({"constraint": "cooldown", "change": level - needs[i], "unit": "workers",
                    "why": "covers later windows due before the next action is allowed"})
    if to < level:
        adj.append({"constraint": "max_step", "change": to - level, "unit": "workers",
                    "limit": sc.max_step})
    if execute_at > ideal:
        adj.append({"constraint": "cooldown", "change": (execute_at - ideal).total_seconds(),
                    "unit": "s", "why": "delayed until the cooldown after the last action"})
    st.steps.append(RawStep(execute_at, st.workers, to, i, "up", covers, adj))
    st.workers, st.earliest, st.splitting_down = to, execute_at + cooldown, False


def _scale_down(st: _State, i: int, needs: list[int], starts: list[datetime],
                due_up: list[datetime], now: datetime, sc: ScalingSpec) -> bool:
    """Emit a scale-down at window i if hysteresis allows; False (and a hold note) if not."""
    cooldown = timedelta(seconds=sc.cooldown_seconds)
    execute_at = max(st.earliest, now, starts[i])
    k = sc.scale_down_windows
    if i + k > len(needs):
        st.holds[i] = (f"hysteresis: fewer than scale_down_windows={k} windows left in the "
                       "horizon to confirm the drop")
        return False
    hold_level = max(needs[i:i + k])
    # due_up[j] <= max(now, starts[j]), so this also covers windows starting in the cooldown
    covers = [j for j in range(i, len(needs)) if j < i + k or due_up[j] < execute_at + cooldown]
    level = max(needs[j] for j in covers)
    drop = st.workers - level
    # the rest of a scale-down split by max_step goes ahead even if smaller than min_drop
    if drop < sc.scale_down_min_drop and not (st.splitting_down and drop > 0):
        if hold_level >= st.workers:
            st.holds[i] = (f"hysteresis: need rises back to {hold_level} within "
                           f"scale_down_windows={k} window(s); keeping {st.workers} workers")
        elif drop <= 0:
            st.holds[i] = (f"cooldown: need rises back to {level} before the next action is "
                           f"allowed; keeping {st.workers} workers")
        else:
            st.holds[i] = (f"hysteresis: drop of {drop} < scale_down_min_drop="
                           f"{sc.scale_down_min_drop}")
        return False
    to = max(level, st.workers - sc.max_step)
    adj: list[dict[str, object]] = []
    if hold_level > needs[i]:
        adj.append({"constraint": "hysteresis", "change": hold_level - needs[i],
                    "unit": "workers", "why": f"highest need over the next {k} window(s)"})
    if level > hold_level:
        adj.append({"constraint": "cooldown", "change": level - hold_level, "unit": "workers",
                    "why": "covers later windows due before the next action is allowed"})
    if to > level:
        adj.append({"constraint": "max_step", "change": to - level, "unit": "workers",
                    "limit": sc.max_step})
    natural = max(now, starts[i])
    if execute_at > natural:
        adj.append({"constraint": "cooldown", "change": (execute_at - natural).total_seconds(),
                    "unit": "s", "why": "delayed until the cooldown after the last action"})
    st.steps.append(RawStep(execute_at, st.workers, to, i, "down", covers, adj))
    st.workers, st.earliest, st.splitting_down = to, execute_at + cooldown, to > level
    return True
