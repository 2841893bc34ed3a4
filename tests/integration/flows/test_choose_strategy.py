"""``scaling.strategy: auto`` end to end: the choose-strategy flow backtests each auto queue's
last stretch of stored history, stores the choice with its figures, and the queue's next plan
carries it (details ``strategy``/``strategy_why``); a changed policy falls back to the
default without evidence and says why; a queue with no history never stops the other queues'
choices."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from capplan_app.bootstrap import DEMO_METRICS, plan_store
from capplan_core.backtest.evidence import evidence_days
from capplan_core.backtest.run import run_backtest
from capplan_core.metrics.file_source import read_metrics_file
from capplan_core.metrics.history import history_span
from capplan_core.metrics.transfer import frame_to_store_rows
from capplan_core.planning.markdown import plan_markdown
from capplan_core.planning.strategy_choice import (
    AUDIT_ACTION,
    choice_from_days,
    choose_strategy,
    stored_choice,
)
from capplan_core.policy import parse_policies

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EVIDENCE_DAYS = 1.0
CAPPLAN = str(Path(sys.executable).parent / "capplan")


def _policies(thumbs_slo_s: float = 10.0):  # type: ignore[no-untyped-def]
    common = {
        "mode": "advisory",
        "scaling": {"min_workers": 1, "max_workers": 40, "strategy": "auto"},
        "forecast": {"interval_minutes": 15, "seasonality": ["daily"], "horizon_hours": 2},
        "simulation": {"replications": 40},
    }
    return parse_policies(
        {
            "policies": [
                {
                    "name": "thumbs",
                    "queue": "thumbnails",
                    "target": {"kind": "scaledobject", "namespace": "w", "name": "thumb"},
                    "slo": {"wait_p95_seconds": thumbs_slo_s},
                    **common,
                },
                {
                    "name": "ghost",
                    "queue": "never-collected",
                    "target": {"namespace": "w", "name": "ghost"},
                    "slo": {"wait_p95_seconds": 10},
                    **common,
                },
                {
                    "name": "stale",
                    "queue": "stopped-reporting",
                    "target": {"kind": "scaledobject", "namespace": "w", "name": "stale"},
                    "slo": {"wait_p95_seconds": 10},
                    **common,
                },
                {
                    "name": "mails",
                    "queue": "emails",
                    "target": {"namespace": "w", "name": "mail"},
                    "slo": {"wait_p95_seconds": 30},
                    **{**common, "scaling": {"max_workers": 40, "strategy": "predictive"}},
                },
            ]
        }
    )


def _capplan(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PREFECT_LOGGING_LEVEL": "WARNING"}
    return subprocess.run([CAPPLAN, *args], env=env, capture_output=True, text=True, timeout=300)


def _plan(name: str) -> dict:  # type: ignore[type-arg]
    from flows.plan_queue import plan_queue

    return asyncio.run(plan_queue(policy=name, approval="none"))


def test_auto_policies_get_the_strategy_their_own_last_day_chose(prefect_server, capplan_env):
    from flows.choose_strategy import choose_strategy as choose_flow

    store = plan_store()
    frame = read_metrics_file(DEMO_METRICS)
    frame = frame[frame["queue"].isin(["thumbnails", "emails"])].copy()
    frame["timestamp"] += (datetime.now(UTC) - timedelta(minutes=1)) - frame["timestamp"].max()
    store.record_metrics(frame_to_store_rows(frame, source="test"))
    # a queue that stopped reporting two days ago: its history is there, its last day is not
    stale = frame[frame["queue"] == "thumbnails"].copy()
    stale["queue"], stale["timestamp"] = "stopped-reporting", stale["timestamp"] - timedelta(days=2)
    store.record_metrics(frame_to_store_rows(stale, source="test"))
    store.apply_policies(_policies(), actor="test")

    # before any evidence: hybrid on a ScaledObject (it can react above its floor), and the
    # plan says why; the Deployment-backed predictive policy is predictive
    before = _plan("thumbs")
    assert before["details"]["strategy"] == "hybrid"
    assert "no evidence yet" in before["details"]["strategy_why"]
    assert _plan("mails")["details"]["strategy"] == "predictive"

    state = choose_flow(evidence_days=EVIDENCE_DAYS, return_state=True)
    # the ghost queue has no rows: the run fails naming it, after choosing for thumbs
    assert state.is_failed()
    failure = f"{state.message} {state.result(raise_on_failure=False)!r}"
    assert "ghost: no stored metrics for queue never-collected" in failure
    # the stale queue is named with when it stopped, and no choice is made on invented days
    assert "stale: queue stopped-reporting has reported no metrics since" in failure
    assert store.latest_audit_event(AUDIT_ACTION, queue="stopped-reporting") is None
    entry = store.latest_audit_event(AUDIT_ACTION, queue="thumbnails")
    assert entry is not None and entry.actor == "choose-strategy"
    choice = stored_choice(entry.details)
    assert choice is not None and choice.policy == "thumbs" and choice.policy_version == 1
    assert store.latest_audit_event(AUDIT_ACTION, queue="emails") is None  # predictive policy
    assert store.latest_audit_event(AUDIT_ACTION, queue="never-collected") is None

    # the figures are the backtest's, replayed again here on the same stored rows
    (thumbs,) = [p for p in _policies() if p.name == "thumbs"]
    rows = store.metrics_history(
        "thumbnails", choice.start - history_span(thumbs.forecast), choice.end
    )
    again = run_backtest(
        rows, thumbs, start=pd.Timestamp(choice.start), end=pd.Timestamp(choice.end)
    ).to_dict()["strategies"]
    assert choice.predictive.attainment == pytest.approx(again["predictive"]["slo_attainment"])
    assert choice.hybrid.worker_hours == pytest.approx(again["hybrid"]["worker_hours"])
    assert (choice.end - choice.start) == timedelta(days=EVIDENCE_DAYS)
    # no evidence before: its plans were hybrid (the default where the target reacts), and a
    # change from it must clear the band
    assert (choice.chosen, choice.why) == choose_strategy(
        choice.predictive, choice.hybrid, "hybrid"
    )

    # the next plan carries the choice and says what it stands on
    after = _plan("thumbs")
    assert after["details"]["strategy"] == choice.chosen
    why = after["details"]["strategy_why"]
    assert why.startswith(f"scaling.strategy: auto — {choice.chosen}") and choice.why in why
    assert f"**Strategy:** {why}" in plan_markdown(after, after["details"])  # the plan artifact

    # the CLI shows what each policy's next plan carries out, and why
    shown = {r["name"]: r for r in json.loads(_capplan("policies", "strategy", "--json").stdout)}
    assert shown["thumbs"]["carries_out"] == choice.chosen and choice.why in shown["thumbs"]["why"]
    assert (shown["mails"]["stated"], shown["mails"]["carries_out"]) == ("predictive", "predictive")
    bad = _capplan("policies", "strategy", "--policies", "nope")
    assert bad.returncode == 2 and "--policies: no stored policy named nope" in bad.stderr

    # the next day's run replays only what came since the last choice's newest stretch: a
    # choice stored as if the last run had ended six hours ago keeps its stretch, and the run
    # replays the six hours since (the daily schedule's day, shortened for the test)
    six_ago = choice.end - timedelta(hours=6)
    earlier = run_backtest(
        rows, thumbs, start=pd.Timestamp(six_ago - timedelta(hours=12)), end=pd.Timestamp(six_ago)
    )
    (stretch,) = evidence_days(earlier)
    store.audit(
        AUDIT_ACTION,
        actor="test",
        queue="thumbnails",
        details=choice_from_days(
            [stretch], policy=thumbs, policy_version=1, chosen_at=choice.chosen_at
        ).as_dict(),
    )
    (row,) = choose_flow(policies=["thumbs"], evidence_days=EVIDENCE_DAYS)
    newest = store.latest_audit_event(AUDIT_ACTION, queue="thumbnails")
    again_choice = None if newest is None else stored_choice(newest.details)
    assert again_choice is not None and again_choice.days[0] == stretch  # kept, not replayed
    new = again_choice.days[-1]
    assert new.start == six_ago and 6.0 <= row["replayed_hours"] < 6.5
    fresh = run_backtest(
        store.metrics_history("thumbnails", six_ago - history_span(thumbs.forecast), new.end),
        thumbs,
        start=pd.Timestamp(six_ago),
        end=pd.Timestamp(new.end),
    ).to_dict()["strategies"]
    assert sum(d.predictive_worker_hours for d in again_choice.days[1:]) == pytest.approx(
        fresh["predictive"]["worker_hours"]
    )
    assert again_choice.predictive.worker_hours == pytest.approx(
        stretch.predictive_worker_hours + fresh["predictive"]["worker_hours"]
    )

    # a changed policy is new: its old week is no evidence for it
    store.apply_policies(_policies(thumbs_slo_s=20.0), actor="test")
    changed = _plan("thumbs")
    assert changed["details"]["strategy"] == "hybrid"  # the default without evidence
    assert "policy version 1, not 2" in changed["details"]["strategy_why"]


def test_bad_parameters_fail_at_once_naming_them_and_store_nothing(prefect_server, capplan_env):
    from flows.choose_strategy import choose_strategy as choose_flow

    store = plan_store()
    store.apply_policies(_policies(), actor="test")
    with pytest.raises(Exception, match="evidence_days"):
        choose_flow(evidence_days=0)
    with pytest.raises(ValueError, match=r"policies: no stored policy named \['nope'\]"):
        choose_flow(policies=["nope", "thumbs"])
    assert store.latest_audit_event(AUDIT_ACTION, queue="thumbnails") is None
