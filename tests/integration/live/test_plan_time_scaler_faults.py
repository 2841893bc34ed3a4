"""Issue 11, bad input and faults: supervisord unreachable, or a group that does not exist, when
a plan reads the live replica count. Nothing is planned for that queue, nothing changes, and the
audit and the run say which scaler failed (the password never appears)."""

from __future__ import annotations

import socket

import pytest

from capplan_app.bootstrap import DEMO_METRICS, DEMO_POLICIES, plan_store
from capplan_app.live.harness import Supervisord
from capplan_app.settings import get_settings
from capplan_core.execution.scaler import ScalerError
from capplan_core.metrics.file_source import data_end, read_queue_rows
from capplan_core.policy import ScalingPolicy, load_policies
from capplan_core.quality import assess
from tasks.planning import read_pool_state

pytestmark = pytest.mark.integration


def _policy(group: str) -> ScalingPolicy:
    base = next(p for p in load_policies(DEMO_POLICIES) if p.name == "emails")
    target = base.target.model_copy(update={"kind": "supervisor", "name": group})
    return base.model_copy(update={"target": target})


def _read_live_state(policy: ScalingPolicy) -> None:
    now = data_end(DEMO_METRICS).to_pydatetime()
    assessment = assess(read_queue_rows(DEMO_METRICS, policy.queue), policy, now=now)
    read_pool_state.fn(assessment, policy, True)


def _use_supervisor(
    monkeypatch: pytest.MonkeyPatch, url: str, user: str | None, password: str | None
) -> None:
    monkeypatch.setenv("CAPPLAN_SCALER", "supervisor")
    monkeypatch.setenv("CAPPLAN_SUPERVISOR_URL", url)
    if user is not None:
        monkeypatch.setenv("CAPPLAN_SUPERVISOR_USERNAME", user)
    if password is not None:
        monkeypatch.setenv("CAPPLAN_SUPERVISOR_PASSWORD", password)
    get_settings.cache_clear()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_supervisord_fails_the_queue_and_is_audited(
    capplan_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_supervisor(monkeypatch, f"http://127.0.0.1:{_closed_port()}/RPC2", "u", "s3cret-pw")
    with pytest.raises(ScalerError) as info:
        _read_live_state(_policy("rqw"))
    assert info.value.kind == "unreachable" and info.value.transient
    events = plan_store().audit_events(action="scaler_read_failed")
    assert [(e.queue, e.details["kind"], e.details["transient"]) for e in events] == [
        ("emails", "unreachable", True)
    ]
    assert "s3cret-pw" not in repr(events)


def test_a_group_that_does_not_exist_fails_the_queue_and_is_audited(
    capplan_env: str, monkeypatch: pytest.MonkeyPatch, supervisord: Supervisord
) -> None:
    _use_supervisor(monkeypatch, supervisord.url, supervisord.username, supervisord.password)
    with pytest.raises(ScalerError) as info:
        _read_live_state(_policy("no-such-group"))
    assert info.value.kind == "not_found" and not info.value.transient
    assert "no-such-group" in str(info.value)
    events = plan_store().audit_events(action="scaler_read_failed")
    assert [(e.queue, e.details["kind"]) for e in events] == [("emails", "not_found")]
    assert "no-such-group" in events[0].details["error"]
    assert supervisord.password not in repr(events)
    # nothing changed: no worker of the real group was started
    from xmlrpc.client import ServerProxy

    url = supervisord.url.replace(
        "http://", f"http://{supervisord.username}:{supervisord.password}@"
    )
    states = {p["statename"] for p in ServerProxy(url).supervisor.getAllProcessInfo()}
    assert states <= {"STOPPED"}
