"""A plan's first window starts before its now (windows align to the forecast interval). The
minutes of it already past are not judged (they are the simulation's warm-up), and the re-plan
loop adds workers only to windows a worker started now can still reach — so a plan is not
inflated for minutes nobody can change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from capplan_core.metrics.file_source import read_metrics_file
from capplan_core.planning.batch import plan_one
from capplan_core.planning.plan_scenario import plan_scenario
from capplan_core.planning.pool_state import QueueState
from capplan_core.policy import load_policies

ROOT = Path(__file__).resolve().parents[3]
START = datetime(2026, 11, 20, 11, 45, tzinfo=UTC)


def _scenario(judged_from: datetime | None):
    pol = {p.name: p for p in load_policies(ROOT / "data/demo/policies.yaml")}["reports"]
    state = QueueState(current_workers=3, current_backlog=0.0, mean_service_s=30.0)
    return plan_scenario(
        pol,
        state,
        [],
        start=START,
        window_s=900.0,
        demand_paths=np.full((2, 4), 0.1),
        judged_from=judged_from,
    )


def test_the_past_minutes_of_the_first_window_are_warm_up():
    assert _scenario(START + timedelta(minutes=14)).warmup_s == 840.0
    assert _scenario(None).warmup_s == 0.0
    assert _scenario(START - timedelta(minutes=5)).warmup_s == 0.0  # now before the start
    assert _scenario(START + timedelta(hours=2)).warmup_s == 0.0  # past the horizon


def test_the_demo_reports_plan_is_not_inflated_for_a_window_it_cannot_reach():
    frame = read_metrics_file(ROOT / "data/demo/metrics.csv.gz")
    pol = {p.name: p for p in load_policies(ROOT / "data/demo/policies.yaml")}["reports"]
    rows = frame.loc[frame["queue"] == pol.queue].reset_index(drop=True)
    now = pd.Timestamp("2026-11-20T11:59:00Z").to_pydatetime()  # 14 min into the 11:45 window
    out = plan_one(pol, lambda _: rows, now, from_file=True)
    assert out.status == "planned" and out.decision is not None
    d = out.decision
    # workers added at 11:59 are ready at 12:01, after the 11:45 window ends: never bumped
    assert all(h["extra_workers"][0] == 0 for h in d.history), d.history
    assert d.proposal.target_workers <= 5  # was 8: +3 "extra" for the elapsed window
    assert d.confidence >= pol.scaling.confidence_threshold  # measured 0.805 (was 0.685)
