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
- dwell: no scale-down within ``min_dwell_seconds`` of the previous action (also after
  ``last_scale_at``), and a scale-down goes only to a level that covers every window due
  within the dwell after it — so a short dip is held through, and a plan never goes up-down
  or down-up within the dwell (the flapping of issue 15);
- action cost (``action_cost_worker_hours``, step merging): a scale-up also covers a later,
  higher window when holding those extra workers early costs fewer worker-hours than the
  action it saves; a scale-down must save more than two actions (down, then back up).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from capplan_core.policy import ScalingSpec


def _dwell_s(sc: ScalingSpec) -> float:
    """The dwell; a spec whose dwell was not resolved (``planning/defaults.py``) gets 30 min."""
    return 1800.0 if sc.min_dwell_seconds is None else float(sc.min_dwell_seconds)


def _action_cost(sc: ScalingSpec) -> float:
    """The cost of an action; unresolved (None): off."""
    return 0.0 if sc.action_cost_worker_hours is None else float(sc.action_cost_worker_hours)


@dataclass(frozen=True)
class RawStep:
    """A step before its human-readable reason is written."""

    execute_at: datetime
    from_workers: int
    to_workers: int
    window_index: int
    direction: str  # "up" | "down"
    covers: list[int]  # windows whose need set the level
    adjustments: list[dict[str, object]] = field(default_factory=list)


@dataclass
class _State:
    workers: int
    earliest: datetime  # the next action may not happen before this
    down_earliest: datetime  # the next scale-down may not happen before this
    steps: list[RawStep] = field(default_factory=list)
    holds: dict[int, str] = field(default_factory=dict)  # window -> why a scale-down waited
    splitting_down: bool = False  # the last action was a scale-down cut short by max_step


def schedule_steps(
    needs: list[int],
    starts: list[datetime],
    *,
    now: datetime,
    current_workers: int,
    scaling: ScalingSpec,
    last_scale_at: datetime | None = None,
) -> tuple[list[RawStep], dict[int, str]]:
    """Steps (in time order) and, per window, why a possible scale-down was held back."""
    cooldown = timedelta(seconds=scaling.cooldown_seconds)
    dwell = timedelta(seconds=_dwell_s(scaling))
    earliest = now if last_scale_at is None else max(now, last_scale_at + cooldown)
    down_earliest = now if last_scale_at is None else max(now, last_scale_at + dwell)
    st = _State(workers=int(current_workers), earliest=earliest, down_earliest=down_earliest)
    lead = timedelta(seconds=scaling.startup_seconds)
    due_up = [max(now, t - lead) for t in starts]
    i = 0
    while i < len(needs):
        if needs[i] > st.workers:
            _scale_up(st, i, needs, due_up, now, scaling)
        elif not (
            needs[i] < st.workers and _scale_down(st, i, needs, starts, due_up, now, scaling)
        ):
            i += 1
    return st.steps, st.holds


def _scale_up(
    st: _State, i: int, needs: list[int], due_up: list[datetime], now: datetime, sc: ScalingSpec
) -> None:
    cooldown = timedelta(seconds=sc.cooldown_seconds)
    actions_needed = math.ceil((needs[i] - st.workers) / sc.max_step)
    ideal = max(now, due_up[i] - (actions_needed - 1) * cooldown)
    execute_at = max(st.earliest, ideal)
    covers = [j for j in range(i, len(needs)) if j == i or due_up[j] < execute_at + cooldown]
    level = max(needs[j] for j in covers)
    merged = _merge_later_ups(covers, level, needs, due_up, execute_at, _action_cost(sc))
    to = min(st.workers + sc.max_step, max(level, merged))
    adj: list[dict[str, object]] = []
    if level > needs[i]:
        adj.append(
            {
                "constraint": "cooldown",
                "change": level - needs[i],
                "unit": "workers",
                "why": "covers later windows due before the next action is allowed",
            }
        )
    if merged > level:
        adj.append(
            {
                "constraint": "merge",
                "change": merged - level,
                "unit": "workers",
                "why": "holding them early costs less than a later scale-up "
                f"(action_cost_worker_hours={_action_cost(sc):g})",
            }
        )
        level = merged
    if to < level:
        adj.append(
            {
                "constraint": "max_step",
                "change": to - level,
                "unit": "workers",
                "limit": sc.max_step,
            }
        )
    if execute_at > ideal:
        adj.append(
            {
                "constraint": "cooldown",
                "change": (execute_at - ideal).total_seconds(),
                "unit": "s",
                "why": "delayed until the cooldown after the last action",
            }
        )
    st.steps.append(RawStep(execute_at, st.workers, to, i, "up", covers, adj))
    st.workers, st.earliest, st.splitting_down = to, execute_at + cooldown, False
    st.down_earliest = execute_at + timedelta(seconds=_dwell_s(sc))


def _merge_later_ups(
    covers: list[int],
    level: int,
    needs: list[int],
    due_up: list[datetime],
    execute_at: datetime,
    action_cost_wh: float,
) -> int:
    """The level a scale-up should reach so later, higher windows need no action of their own.

    Window j is absorbed when (needs[j] - level) workers held from ``execute_at`` until it is
    due cost at most ``action_cost_wh`` worker-hours; the scan stops at the first window that
    would cost more (it gets its own scale-up).
    """
    if action_cost_wh <= 0:
        return level
    for j in range(max(covers) + 1, len(needs)):
        if needs[j] <= level:
            continue
        held_h = max(0.0, (due_up[j] - execute_at).total_seconds()) / 3600.0
        if (needs[j] - level) * held_h > action_cost_wh:
            break
        level = needs[j]
    return level


def _scale_down(
    st: _State,
    i: int,
    needs: list[int],
    starts: list[datetime],
    due_up: list[datetime],
    now: datetime,
    sc: ScalingSpec,
) -> bool:
    """Emit a scale-down at window i if hysteresis allows; False (and a hold note) if not."""
    cooldown = timedelta(seconds=sc.cooldown_seconds)
    dwell = timedelta(seconds=_dwell_s(sc))
    execute_at = max(st.earliest, now, starts[i], st.down_earliest)
    k = sc.scale_down_windows
    if i + k > len(needs):
        st.holds[i] = (
            f"hysteresis: fewer than scale_down_windows={k} windows left in the "
            "horizon to confirm the drop"
        )
        return False
    hold_level = max(needs[i : i + k])
    # due_up[j] <= max(now, starts[j]), so this also covers windows starting in the cooldown
    hold_until = execute_at + max(cooldown, dwell)
    covers = [j for j in range(i, len(needs)) if j < i + k or due_up[j] < hold_until]
    level = max(needs[j] for j in covers)
    drop = st.workers - level
    if drop > 0 and not _saves_enough(
        drop, level, covers, needs, due_up, starts, execute_at, _action_cost(sc)
    ):
        st.holds[i] = (
            f"action cost: removing {drop} worker(s) until the need rises again "
            f"saves less than two actions of {_action_cost(sc):g} "
            "worker-hours"
        )
        return False
    # the rest of a scale-down split by max_step goes ahead even if smaller than min_drop
    if drop < sc.scale_down_min_drop and not (st.splitting_down and drop > 0):
        if hold_level >= st.workers:
            st.holds[i] = (
                f"hysteresis: need rises back to {hold_level} within "
                f"scale_down_windows={k} window(s); keeping {st.workers} workers"
            )
        elif drop <= 0:
            by = (
                "cooldown"
                if max(needs[j] for j in covers if j < i + k or due_up[j] < execute_at + cooldown)
                >= st.workers
                else "dwell"
            )
            st.holds[i] = (
                f"{by}: need rises back to {level} before the next action is "
                f"allowed; keeping {st.workers} workers"
            )
        else:
            st.holds[i] = (
                f"hysteresis: drop of {drop} < scale_down_min_drop={sc.scale_down_min_drop}"
            )
        return False
    to = max(level, st.workers - sc.max_step)
    adj: list[dict[str, object]] = []
    if hold_level > needs[i]:
        adj.append(
            {
                "constraint": "hysteresis",
                "change": hold_level - needs[i],
                "unit": "workers",
                "why": f"highest need over the next {k} window(s)",
            }
        )
    if level > hold_level:
        adj.append(
            {
                "constraint": "dwell" if dwell > cooldown else "cooldown",
                "change": level - hold_level,
                "unit": "workers",
                "why": "covers later windows due before the next action is allowed",
            }
        )
    if to > level:
        adj.append(
            {
                "constraint": "max_step",
                "change": to - level,
                "unit": "workers",
                "limit": sc.max_step,
            }
        )
    natural = max(now, starts[i])
    if execute_at > natural:
        by = (
            "dwell"
            if execute_at == st.down_earliest and st.down_earliest > st.earliest
            else "cooldown"
        )
        adj.append(
            {
                "constraint": by,
                "change": (execute_at - natural).total_seconds(),
                "unit": "s",
                "why": f"delayed until the {by} after the last action",
            }
        )
    st.steps.append(RawStep(execute_at, st.workers, to, i, "down", covers, adj))
    st.workers, st.earliest, st.splitting_down = to, execute_at + cooldown, to > level
    st.down_earliest = execute_at + dwell
    return True


def _saves_enough(
    drop: int,
    level: int,
    covers: list[int],
    needs: list[int],
    due_up: list[datetime],
    starts: list[datetime],
    execute_at: datetime,
    action_cost_wh: float,
) -> bool:
    """Whether ``drop`` workers removed until the need next exceeds ``level`` (or the horizon
    ends) save more than two actions' cost (worker-hours)."""
    if action_cost_wh <= 0:
        return True
    after = [j for j in range(max(covers) + 1, len(needs)) if needs[j] > level]
    if after:
        until = due_up[after[0]]
    else:  # the need stays low to the horizon's end: one more window beyond the last
        until = starts[-1] + (starts[-1] - starts[-2] if len(starts) > 1 else timedelta(0))
    saved_wh = drop * max(0.0, (until - execute_at).total_seconds()) / 3600.0
    return saved_wh > 2.0 * action_cost_wh
