"""The plan starts from the scaler's live count; a difference from the measured one shows."""

from __future__ import annotations

from capplan_core.planning.markdown import plan_markdown
from capplan_core.planning.pool_state import QueueState


def test_state_details_and_markdown_show_a_live_count_that_differs() -> None:
    st = QueueState(
        current_workers=7,
        current_backlog=3.0,
        mean_service_s=0.5,
        measured_workers=5,
        replica_source="supervisor scaler",
    )
    assert st.workers_differ
    d = st.details()
    assert (d["current_workers"], d["measured_workers"], d["workers_differ"]) == (7, 5, True)
    md = plan_markdown(
        {
            "id": 1,
            "queue": "q",
            "policy": "p",
            "mode": "auto",
            "current_workers": 7,
            "target_workers": 9,
            "confidence": 0.9,
            "slo_achievable": True,
        },
        {"state": d},
    )
    assert (
        "**Live workers differ from measured:** the plan starts from 7 (supervisor "
        "scaler); the newest metrics measured 5"
    ) in md


def test_no_note_when_counts_agree_or_no_live_read() -> None:
    same = QueueState(4, 0.0, 1.0, measured_workers=4, replica_source="supervisor scaler")
    offline = QueueState(4, 0.0, 1.0)
    assert not same.workers_differ and not offline.workers_differ
    summary = {
        "id": 1,
        "queue": "q",
        "policy": "p",
        "mode": "auto",
        "current_workers": 4,
        "target_workers": 4,
        "confidence": 0.9,
        "slo_achievable": True,
    }
    assert "differ" not in plan_markdown(summary, {"state": same.details()})
