"""Shared pieces of the execution fault tests: a plan on its own Deployment in the Kubernetes
API double, runs of ``apply_due`` (in this process, or in processes forked from a warm
forkserver), the invariants over the whole history, and the figures each case records."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kubernetes.client  # noqa: F401  (imported here so forked runs start warm)
from k8s_double import K8sApiDouble

from capplan_adapters.scalers.k8s_deployment import KubernetesDeploymentScaler
from capplan_adapters.store.db import make_engine
from capplan_adapters.store.repo import PlanStore
from capplan_core.execution.due import DueRun, apply_due, self_kill_hook
from capplan_core.execution.write import RetryPolicy
from capplan_core.planning.repository import PlanRepository
from capplan_core.planning.stored_plan import PlanDraft, StepDraft, StepStatus
from capplan_core.policy import ScalingPolicy
from tests.approvers import approve, env_approval

NAMESPACE = "faults"
#: short leases and pauses so a killed run's step is taken over within a second
LEASE_S = 0.5
FAST_RETRY = RetryPolicy(attempts=4, backoff_s=0.05)
#: (connect, read) seconds: a delayed answer is a client time-out
CLIENT_TIMEOUT_S = (1.0, 0.6)
OUTCOME_ACTIONS = {
    "step_applied",
    "step_noop",
    "step_refused",
    "step_failed",
    "step_expired",
    "step_cancelled",
}
REPORT = Path(os.environ.get("CAPPLAN_FAULT_REPORT", "/tmp/capplan-fault-report.jsonl"))


def scaler(url: str) -> KubernetesDeploymentScaler:
    from kubernetes.client import ApiClient, Configuration

    cfg = Configuration(host=url)
    cfg.retries = 0
    return KubernetesDeploymentScaler(api_client=ApiClient(cfg), request_timeout_s=CLIENT_TIMEOUT_S)


def make_plan(
    store: PlanRepository,
    double: K8sApiDouble,
    name: str,
    moves: list[tuple[int, int]],
    *,
    cooldown_s: float = 0,
) -> int:
    """An approved plan for queue ``name`` scaling Deployment ``faults/name``; every step due."""
    double.add_deployment(NAMESPACE, name, replicas=moves[0][0])
    policy = ScalingPolicy.model_validate(
        {
            "name": name,
            "queue": name,
            "mode": "manual",
            "target": {"kind": "deployment", "namespace": NAMESPACE, "name": name},
            "slo": {"wait_p95_seconds": 30},
            "scaling": {
                "min_workers": 1,
                "max_workers": 100,
                "max_step": 10,
                "cooldown_seconds": cooldown_s,
            },
            "approval": env_approval(["alice"]),
        }
    )
    store.apply_policies([policy], actor="test")
    now = datetime.now(UTC)
    pid = store.create_plan(
        PlanDraft(
            policy_name=name,
            queue=name,
            mode="manual",
            current_workers=moves[0][0],
            target_workers=moves[-1][1],
            confidence=0.9,
            slo_achievable=True,
            as_of=now - timedelta(minutes=1),
            expires_at=now + timedelta(hours=1),
            steps=[
                StepDraft(now - timedelta(seconds=30 - i), a, b, f"step {i}")
                for i, (a, b) in enumerate(moves)
            ],
            details={"policy": name},
        )
    )
    approve(store, pid, "alice")  # with alice's code: the CLI's write checks it
    return pid


def run_due(
    store: PlanRepository, url: str, run_id: str, *, hook_at: str | None = None
) -> list[dict[str, Any]]:
    """One apply-due run, as ``capplan plans apply-due`` does it, against the double."""
    k8s = scaler(url)
    run = DueRun(
        run_id=run_id, actor=run_id, lease_s=LEASE_S, retry=FAST_RETRY, hook=self_kill_hook(hook_at)
    )
    return apply_due(store, lambda _p, _s: k8s, run=run)


def _forked_run(
    db_url: str, k8s_url: str, run_id: str, kill_at: str | None, barrier: Any, out_path: str
) -> None:
    """Body of a forked apply-due process: its own engine and client, optionally killing
    itself (SIGKILL) at a hook point; writes its outcomes to ``out_path`` as JSON."""
    store = PlanStore(make_engine(db_url))  # already migrated by the test
    if barrier is not None:
        barrier.wait(timeout=60)
    out = run_due(store, k8s_url, run_id, hook_at=kill_at)
    Path(out_path).write_text(json.dumps(out))


def _zygote(conn: Any) -> None:
    """A warm process (this module imported once) that forks each batch of runs on request.

    Forked children start in milliseconds with kubernetes, SQLAlchemy and capplan already
    imported; no engine or connection exists here before the fork, so none is shared."""
    ctx = multiprocessing.get_context("fork")
    while True:
        batch = conn.recv()
        if batch is None:
            return
        barrier = ctx.Barrier(len(batch)) if len(batch) > 1 else None
        pids = []
        for args in batch:
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    _forked_run(*args[:4], barrier, args[4])
                except BaseException:  # noqa: BLE001 - report through the exit code
                    code = 1
                os._exit(code)
            pids.append(pid)
        codes = []
        for pid in pids:
            _, status = os.waitpid(pid, 0)
            codes.append(-os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))
        conn.send(codes)


class Forker:
    """Runs batches of apply-due processes, forked from one warm zygote process."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_zygote, args=(child,), daemon=True)
        self._proc.start()

    def run(
        self, batch: list[tuple[str, str, str, str | None, str]], timeout_s: float = 300
    ) -> list[int]:
        """Fork one process per ``(db_url, k8s_url, run_id, kill_at, out_path)``, all started
        together; return their exit codes (``-9``: killed by SIGKILL)."""
        self._conn.send(batch)
        if not self._conn.poll(timeout_s):
            raise TimeoutError(f"apply-due processes still running after {timeout_s} s")
        codes: list[int] = self._conn.recv()
        return codes

    def close(self) -> None:
        self._conn.send(None)
        self._proc.join(timeout=10)


@dataclass
class Tally:
    """Figures of one fault case over all its repetitions."""

    case: str
    repetitions: int = 0
    steps: int = 0
    writes: int = 0
    double_applied: int = 0
    lost: int = 0
    audit_gaps: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    started: float = field(default_factory=time.monotonic)

    def record(self) -> dict[str, Any]:
        self.seconds = round(time.monotonic() - self.started, 1)
        row = {
            "case": self.case,
            "repetitions": self.repetitions,
            "steps": self.steps,
            "cluster_writes": self.writes,
            "double_applied": self.double_applied,
            "lost": self.lost,
            "audit_gaps": self.audit_gaps,
            "final_statuses": dict(self.outcomes),
            "seconds": self.seconds,
        }
        print("FAULTS " + json.dumps(row))
        with REPORT.open("a") as f:
            f.write(json.dumps(row) + "\n")
        return row


def check_history(
    store: PlanRepository,
    double: K8sApiDouble,
    pid: int,
    name: str,
    tally: Tally,
    *,
    expect_applied: int,
) -> list[str]:
    """Invariants over one plan's whole history; returns the final step statuses.

    * each step reaches the cluster at most once (changes ``from -> to`` in the double);
    * nothing lost: the first ``expect_applied`` steps are applied, none is left claimed or
      applying;
    * the audit is complete: every step with an ``applying`` intent has exactly one outcome
      row, and every final step has exactly one outcome row.
    """
    plan = store.get_plan(pid)
    changes = double.changes_of(NAMESPACE, name)
    events = store.audit_events(plan_id=pid)
    tally.repetitions += 1
    tally.steps += len(plan.steps)
    tally.writes += len(changes)
    statuses = []
    for st in plan.steps:
        statuses.append(st.status)
        tally.outcomes[st.status] += 1
        written = sum((c.before, c.after) == (st.from_workers, st.to_workers) for c in changes)
        tally.double_applied += max(0, written - 1)
        mine = [e.action for e in events if e.details.get("step_id") == st.id]
        outcomes = sum(a in OUTCOME_ACTIONS for a in mine)
        if ("step_applying" in mine and outcomes != 1) or (
            st.status in OUTCOME_ACTIONS_STATUS and outcomes != 1
        ):
            tally.audit_gaps += 1
        if st.seq < expect_applied and st.status != StepStatus.APPLIED:
            tally.lost += 1
        if st.status in (StepStatus.CLAIMED, StepStatus.APPLYING):
            tally.lost += 1
    return statuses


OUTCOME_ACTIONS_STATUS = {a.removeprefix("step_") for a in OUTCOME_ACTIONS}
