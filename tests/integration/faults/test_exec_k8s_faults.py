"""The Kubernetes API double answers 409, 429, 500, 503, times out (before and after the write
landed), drops the connection after the write landed, or refuses for good (403, 404, 422):
no double write, the right final state, and an audit that says what happened. On
PostgreSQL, each case repeated; the figures go to docs/reliability.md."""

from __future__ import annotations

import pytest
from exec_harness import NAMESPACE, Tally, check_history, make_plan, run_due
from k8s_double import Fault, K8sApiDouble

from capplan_core.planning.stored_plan import PlanStatus, StepStatus

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPETITIONS = 20
MOVES = [(4, 7)]
# fault name -> (how to inject it, the fault kind the audit must name)
TRANSIENT = {
    "409": (("PATCH", 409), "conflict"),
    "429": (("PATCH", 429), "unreachable"),
    "500": (("PATCH", 500), "unreachable"),
    "503": (("PATCH", 503), "unreachable"),
    "timeout-before-write": (Fault("PATCH", "delay_before", 0.7), "unreachable"),
    "timeout-after-write-landed": (Fault("PATCH", "delay_after", 0.7), "unreachable"),
    "dropped-after-write-landed": (Fault("PATCH", "drop_after"), "unreachable"),
}
PERMANENT = {"403": "forbidden", "404": "not_found", "422": "invalid"}


def _inject(double: K8sApiDouble, fault: object) -> None:
    if isinstance(fault, Fault):
        double.faults.append(fault)
    else:
        double.fail_next.append(fault)  # type: ignore[arg-type]


@pytest.mark.parametrize("case", list(TRANSIENT))
def test_a_transient_fault_is_read_back_and_written_at_most_once(store, double, case) -> None:
    fault, kind = TRANSIENT[case]
    tally = Tally(f"Kubernetes {case}")
    for rep in range(REPETITIONS):
        name = f"k8s-{case}-{rep}"
        pid = make_plan(store, double, name, MOVES)
        _inject(double, fault)
        results = run_due(store, double.url, f"{name}-run")
        statuses = check_history(store, double, pid, name, tally, expect_applied=1)
        assert statuses == [StepStatus.APPLIED], results
        assert double.replicas(NAMESPACE, name) == 7
        applied = store.audit_events(plan_id=pid, action="step_applied")[0].details
        assert kind in {f["kind"] for f in applied["faults"]}, applied
        if "landed" in case:  # read back found the write: not sent again
            assert applied["landed_after"] == kind
    row = tally.record()
    assert (row["double_applied"], row["lost"], row["audit_gaps"]) == (0, 0, 0)
    assert row["cluster_writes"] == REPETITIONS


def test_a_409_after_someone_else_scaled_is_drift_never_an_overwrite(store, double) -> None:
    tally = Tally("Kubernetes 409 after another writer moved the count")
    for rep in range(REPETITIONS):
        name = f"k8s-drift-{rep}"
        pid = make_plan(store, double, name, MOVES)

        def other_writer(method: str, path: str, name: str = name) -> None:
            if method == "PATCH" and path.endswith(f"/{name}/scale"):
                double.before_handle = None
                double._set_deploy_replicas((NAMESPACE, name), 9)  # kubectl, under the lock

        double.before_handle = other_writer
        results = run_due(store, double.url, f"{name}-run")
        statuses = check_history(store, double, pid, name, tally, expect_applied=0)
        assert statuses == [StepStatus.REFUSED], results
        assert double.replicas(NAMESPACE, name) == 9
        assert [(c.before, c.after) for c in double.changes_of(NAMESPACE, name)] == [(4, 9)]
        drift = store.audit_events(plan_id=pid, action="drift")
        assert len(drift) == 1 and drift[0].details["live_before"] == 9
    row = tally.record()
    assert (row["double_applied"], row["lost"], row["audit_gaps"]) == (0, 0, 0)


@pytest.mark.parametrize("status", list(PERMANENT))
def test_a_permanent_fault_fails_the_step_and_the_plan_at_once(store, double, status) -> None:
    tally = Tally(f"Kubernetes {status} (permanent)")
    for rep in range(REPETITIONS):
        name = f"k8s-{status}-{rep}"
        pid = make_plan(store, double, name, [(4, 7), (7, 9)])
        double.fail_next.append(("PATCH", int(status)))
        results = run_due(store, double.url, f"{name}-run")
        statuses = check_history(store, double, pid, name, tally, expect_applied=0)
        assert statuses == [StepStatus.FAILED, StepStatus.CANCELLED], results
        assert store.get_plan(pid).status == PlanStatus.FAILED
        assert double.changes_of(NAMESPACE, name) == []
        failed = store.audit_events(plan_id=pid, action="step_failed")[0].details
        assert [f["kind"] for f in failed["faults"]] == [PERMANENT[status]]
        assert results[0]["outcome"] == "failed" and results[0]["plan_failed"]
    row = tally.record()
    assert (row["double_applied"], row["lost"], row["audit_gaps"]) == (0, 0, 0)
    assert row["cluster_writes"] == 0
