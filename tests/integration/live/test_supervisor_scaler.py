"""SupervisorScaler against a real supervisord running real rq workers on the real Redis."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import numpy as np
import pytest
import redis as redis_lib
from pydantic import SecretStr
from rq import Queue, Worker

from capplan_adapters.scalers.supervisor import SupervisorScaler
from capplan_app.live.harness import BROKEN_GROUP, Supervisord, free_port
from capplan_app.live.loadgen import LoadGenerator, RateStep
from capplan_core.execution import Scaler, ScalerError
from capplan_core.policy import TargetSpec
from tests.service_helpers import wait_until

pytestmark = pytest.mark.integration


def scaler_for(sup: Supervisord, password: str | None = None) -> SupervisorScaler:
    return SupervisorScaler(
        sup.url,
        sup.username,
        SecretStr(password or sup.password),
        request_timeout_s=5,
        poll_interval_s=0.2,
    )


def target(group: str = "rqw") -> TargetSpec:
    return TargetSpec(kind="supervisor", name=group)


def rq_workers(r: redis_lib.Redis, sup: Supervisord) -> list[str]:
    return sorted(w.name for w in Worker.all(connection=r, queue=Queue(sup.queue, connection=r)))


def running_worker_names(sup: Supervisord) -> list[str]:
    """The RQ names of the group's running processes: process, tid and pid (each start has a
    name of its own, so supervisord can restart a killed worker: capplan_app/live/harness.py)."""
    infos = sup.rpc().supervisor.getAllProcessInfo()
    return sorted(
        f"{i['name']}_{sup.tid}_{i['pid']}"
        for i in infos
        if i["group"] == sup.group and i["statename"] == "RUNNING"
    )


def test_scale_up_and_down_starts_lowest_and_stops_highest(
    supervisord: Supervisord, live_redis: redis_lib.Redis
) -> None:
    scaler = scaler_for(supervisord)
    assert isinstance(scaler, Scaler)
    t = target()
    assert scaler.get_replicas(t) == 0

    up = scaler.set_replicas(t, 3)
    assert (up.from_replicas, up.to_replicas, up.changed, up.kind) == (0, 3, True, "supervisor")
    ready = scaler.wait_ready(t, 3, timeout_s=20)
    assert ready.ready and ready.ready_replicas == 3
    assert supervisord.running() == ["rqw_00", "rqw_01", "rqw_02"]
    assert scaler.get_replicas(t) == 3
    wait_until(lambda: len(rq_workers(live_redis, supervisord)) == 3, 20, "3 RQ workers")
    assert rq_workers(live_redis, supervisord) == running_worker_names(supervisord)
    assert [n.rsplit("_", 1)[0] for n in rq_workers(live_redis, supervisord)] == [
        f"rqw_{i:02d}_{supervisord.tid}" for i in range(3)
    ]

    down = scaler.set_replicas(t, 1)
    assert (down.from_replicas, down.to_replicas, down.changed) == (3, 1, True)
    ready = scaler.wait_ready(t, 1, timeout_s=30)
    assert ready.ready and ready.ready_replicas == 1
    assert supervisord.running() == ["rqw_00"]
    # a TERM-stopped rq worker unregisters itself (warm shutdown)
    wait_until(lambda: len(rq_workers(live_redis, supervisord)) == 1, 20, "1 RQ worker")
    assert rq_workers(live_redis, supervisord) == running_worker_names(supervisord)
    assert rq_workers(live_redis, supervisord)[0].startswith(f"rqw_00_{supervisord.tid}_")


def test_setting_the_current_count_is_a_no_op(supervisord: Supervisord) -> None:
    scaler, t = scaler_for(supervisord), target()
    scaler.set_replicas(t, 2)
    assert scaler.wait_ready(t, 2, timeout_s=20).ready
    pids_before = supervisord.pids()
    again = scaler.set_replicas(t, 2)
    assert (again.from_replicas, again.to_replicas, again.changed) == (2, 2, False)
    assert supervisord.pids() == pids_before
    assert supervisord.running() == ["rqw_00", "rqw_01"]


def test_more_than_numprocs_is_refused_and_nothing_changes(supervisord: Supervisord) -> None:
    scaler, t = scaler_for(supervisord), target()
    scaler.set_replicas(t, 2)
    assert scaler.wait_ready(t, 2, timeout_s=20).ready
    with pytest.raises(ScalerError) as info:
        scaler.set_replicas(t, 7)
    err = info.value
    assert err.kind == "invalid" and not err.transient
    assert "7" in str(err) and "numprocs=6" in str(err)
    assert supervisord.running() == ["rqw_00", "rqw_01"]
    assert set(supervisord.states().values()) == {"RUNNING", "STOPPED"}


def test_a_failure_part_way_moves_back_what_it_started(supervisord: Supervisord) -> None:
    scaler, t = scaler_for(supervisord), target(BROKEN_GROUP)
    assert scaler.get_replicas(t) == 0
    with pytest.raises(ScalerError) as info:
        scaler.set_replicas(t, 2)  # starts mxa_00, then mxb_01 has no command
    err = info.value
    assert err.kind == "invalid" and not err.transient
    assert "mxb_01" in str(err) and "nothing was left changed" in str(err)
    infos = supervisord.rpc().supervisor.getAllProcessInfo()
    states = {i["name"]: i["statename"] for i in infos if i["group"] == BROKEN_GROUP}
    assert states["mxb_01"] == "STOPPED"
    assert states["mxa_00"] in ("STOPPING", "STOPPED")
    wait_until(
        lambda: scaler.get_replicas(t) == 0 and scaler.wait_ready(t, 0, 0).ready,
        10,
        "mxa_00 to be stopped again",
    )


def test_unknown_group_is_refused_naming_it(supervisord: Supervisord) -> None:
    scaler = scaler_for(supervisord)
    with pytest.raises(ScalerError) as info:
        scaler.set_replicas(target("nosuchgroup"), 1)
    assert info.value.kind == "not_found" and not info.value.transient
    assert "nosuchgroup" in str(info.value) and "rqw" in str(info.value)
    with pytest.raises(ScalerError) as read:
        scaler.get_replicas(target("nosuchgroup"))
    assert read.value.kind == "not_found"
    assert supervisord.running() == []


def test_unreachable_supervisord_is_a_transient_error(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    scaler = SupervisorScaler(
        f"http://127.0.0.1:{port}/RPC2", "u", SecretStr("s3cret-pw"), request_timeout_s=2
    )
    for call in (lambda: scaler.get_replicas(target()), lambda: scaler.set_replicas(target(), 1)):
        with pytest.raises(ScalerError) as info:
            call()
        assert info.value.kind == "unreachable" and info.value.transient
        assert "s3cret-pw" not in str(info.value)
    sock = SupervisorScaler(f"unix://{tmp_path}/missing.sock", request_timeout_s=2)
    with pytest.raises(ScalerError) as info:
        sock.get_replicas(target())
    assert info.value.kind == "unreachable"


def test_a_server_that_never_answers_times_out_as_unreachable() -> None:
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        scaler = SupervisorScaler(f"http://127.0.0.1:{port}/RPC2", request_timeout_s=1)
        started = time.monotonic()
        with pytest.raises(ScalerError) as info:
            scaler.get_replicas(target())
        assert info.value.kind == "unreachable"
        assert time.monotonic() - started < 5


def test_wrong_password_is_forbidden_and_never_echoed(supervisord: Supervisord) -> None:
    wrong = "wrong-" + supervisord.password
    scaler = scaler_for(supervisord, password=wrong)
    with pytest.raises(ScalerError) as info:
        scaler.set_replicas(target(), 2)
    err = info.value
    assert err.kind == "forbidden" and not err.transient and err.status == 401
    for secret in (wrong, supervisord.password):
        assert secret not in str(err) and secret not in repr(err)
        assert secret not in repr(scaler)
    assert supervisord.running() == []


def test_the_password_is_in_no_outcome(supervisord: Supervisord) -> None:
    scaler, t = scaler_for(supervisord), target()
    outcome = scaler.set_replicas(t, 1)
    ready = scaler.wait_ready(t, 1, timeout_s=20)
    for text in (repr(outcome), repr(ready), repr(scaler)):
        assert supervisord.password not in text


def test_credentials_in_the_url_are_refused() -> None:
    with pytest.raises(ScalerError) as info:
        SupervisorScaler("http://u:hunter2@127.0.0.1:9001/RPC2")
    assert info.value.kind == "config" and "hunter2" not in str(info.value)


def test_wait_ready_reports_a_timeout_without_raising(supervisord: Supervisord) -> None:
    scaler, t = scaler_for(supervisord), target()
    ready = scaler.wait_ready(t, 2, timeout_s=0.5)  # nothing was started
    assert not ready.ready and ready.ready_replicas == 0 and ready.polls >= 2
    assert 0.5 <= ready.waited_s < 2


def test_a_kubernetes_target_is_refused() -> None:
    scaler = SupervisorScaler("http://127.0.0.1:1/RPC2")
    with pytest.raises(ScalerError) as info:
        scaler.set_replicas(TargetSpec(kind="deployment", name="rqw"), 1)
    assert info.value.kind == "invalid"


def test_load_generator_produces_the_stepped_rate_and_workers_drain_it(
    supervisord: Supervisord, live_redis: redis_lib.Redis
) -> None:
    scaler, t = scaler_for(supervisord), target()
    scaler.set_replicas(t, 4)
    assert scaler.wait_ready(t, 4, timeout_s=20).ready
    wait_until(lambda: len(rq_workers(live_redis, supervisord)) == 4, 20, "4 RQ workers")
    queue = Queue(supervisord.queue, connection=live_redis)
    gen = LoadGenerator(
        queue,
        [RateStep(0, 2.0), RateStep(3, 8.0)],
        job_s=0.2,
        spacing="poisson",
        rng=np.random.default_rng(11),
    )
    with gen:
        time.sleep(7.0)
    # count per step, by the wall clock of each enqueue
    low = sum(1 for at in gen.enqueued_at if at - gen.started_wall_at < 3.0)
    high = sum(1 for at in gen.enqueued_at if 3.0 <= at - gen.started_wall_at < 7.0)
    # Poisson counts: 2/s × 3 s = 6 (sd 2.4), 8/s × 4 s = 32 (sd 5.7); 3 sd either side
    assert 0 <= low <= 6 + 3 * 2.5
    assert 32 - 3 * 5.7 <= high <= 32 + 3 * 5.7
    # 4 workers × (1 / 0.2 s) = 20 jobs/s of capacity for 8 jobs/s: the queue drains
    wait_until(
        lambda: queue.count == 0 and queue.started_job_registry.count == 0, 20, "the queue to drain"
    )
    finished = queue.finished_job_registry.get_job_ids()
    assert len(finished) == gen.enqueued
    assert queue.failed_job_registry.count == 0


def test_load_generator_even_spacing_is_exact(live_redis: redis_lib.Redis, tid: str) -> None:
    queue = Queue(f"q_even_{tid}", connection=live_redis)
    gen = LoadGenerator(queue, [RateStep(0, 10.0)], spacing="even")
    with gen:
        time.sleep(2.05)
    assert gen.enqueued in (20, 21)
    gaps = np.diff(gen.enqueued_at)
    assert abs(float(np.median(gaps)) - 0.1) < 0.02
    assert queue.count == gen.enqueued
