"""A plan that waits for a person waits in a flow run of its own: ``approve-plan``.

The planning cycle never waits for a person (docs/architecture.md, "approve"): it stores the
plan, applies the policy, and when a person must decide it starts an ``approve-plan`` run for
that plan (:func:`start_approval_run`) and moves on. That run pauses with the approval form
until the plan's approval deadline, and its wait ends at once when the plan stops waiting: a
newer plan of its queue superseded it, it expired, or the run is cancelled in Prefect
(:func:`watched`). A run cancelled while nobody watches (a suspended run, a killed process) is
found by the ``apply-due`` sweeper (:func:`cancel_orphaned_approvals`).

Outside a deployment (``capplan demo``, tests on a temporary Prefect server) the approve-plan
run is a flow run in a thread of this process; :func:`join_local_approval_runs` waits for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable
from typing import Any, TypeVar
from uuid import UUID

from prefect import get_run_logger

from capplan_app.bootstrap import plan_store, run_key_scope
from capplan_core.planning.errors import DecisionConflict, StoreError
from capplan_core.planning.stored_plan import PlanStatus
from tasks.common import capplan_io_task

T = TypeVar("T")
APPROVE_PLAN_DEPLOYMENT = "approve-plan/approve-plan"
#: Prefect states in which an approval run can never decide its plan any more.
ENDED_RUN_STATES = frozenset({"CANCELLING", "CANCELLED", "CRASHED", "FAILED", "COMPLETED"})


class WaitEnded(Exception):  # noqa: N818 - it is an outcome, not an error
    """The wait for a person ended without a decision; the message says why."""


class ApprovalRunUnavailable(RuntimeError):
    """A deployed cycle cannot start an approve-plan run (the deployment is missing)."""


def waiting_ended(plan_id: int, flow_run_id: Any) -> str | None:
    """Why the paused run of ``plan_id`` should stop waiting, or None: the plan is no longer
    proposed (superseded, expired, decided), or the run is being cancelled."""
    plan = plan_store().get_plan(plan_id)
    if plan.status != PlanStatus.PROPOSED:
        return f"plan {plan_id} is no longer waiting for approval: {status_reason(plan_id)}"
    if flow_run_id is None:
        return None
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(UUID(str(flow_run_id))).state
    if state is not None and state.type.value in ("CANCELLING", "CANCELLED"):
        return f"the approval run was cancelled ({state.message or state.name})"
    return None


def status_reason(plan_id: int) -> str:
    """The plan's status with the reason its last audit entry gives."""
    store = plan_store()
    plan = store.get_plan(plan_id)
    events = store.audit_events(plan_id=plan_id, action=str(plan.status))
    if not events:
        return str(plan.status)
    d = events[-1].details
    by = f" by plan {d['by_plan']}" if d.get("by_plan") else ""
    why = d.get("reason") or d.get("comment")
    return f"{plan.status}{by}" + (f" ({why})" if why else "")


async def watched(pause: Awaitable[T], plan_id: int, *, poll_interval_s: float) -> T:
    """Await ``pause`` (Prefect's own pause, which only ends on a resume or its timeout),
    checking every ``poll_interval_s`` whether the wait should end (:func:`waiting_ended`);
    if so, the pause is cancelled and :class:`WaitEnded` raised with the reason."""
    from prefect.runtime import flow_run

    waiting = asyncio.ensure_future(pause)
    try:
        while True:
            done, _ = await asyncio.wait({waiting}, timeout=poll_interval_s)
            if done:
                return waiting.result()
            try:
                why = await asyncio.to_thread(waiting_ended, plan_id, flow_run.id)
            except Exception:  # noqa: BLE001 - the store or the server is restarting:
                continue  # the pause itself goes on; look again at the next poll
            if why:
                raise WaitEnded(why)
    finally:
        if not waiting.done():
            waiting.cancel()
            with contextlib.suppress(BaseException):
                await waiting


def api_outage(err: BaseException) -> bool:
    """Whether ``err`` is Prefect's API being away (unreachable, or answering 5xx while its
    database is down or restored) rather than a refusal: a wait outlasts it."""
    import httpx
    from prefect.exceptions import PrefectHTTPStatusError

    if isinstance(err, httpx.TransportError):
        return True
    return isinstance(err, PrefectHTTPStatusError) and err.response.status_code >= 500


#: :func:`outlast_api_outage`'s answer when the run is running again without a decision (the
#: server's database was restored to before the pause): the caller pauses again.
PAUSE_AGAIN = object()


async def outlast_api_outage(
    form: Any, key: str, deadline_s: float, *, poll_interval_s: float
) -> Any:
    """Wait on after Prefect's own pause loop died of an API outage (:func:`api_outage`).

    Until ``deadline_s`` (event-loop clock) the run's state is read every
    ``poll_interval_s``, errors of a still-absent API ignored: Paused, it goes on waiting;
    Running with the form's answer stored (resumed meanwhile), the answer; Running without one
    (the server's database was restored to before this pause), :data:`PAUSE_AGAIN`; any other
    state ends the wait (:class:`WaitEnded`). Past the deadline, FlowPauseTimeout as Prefect's
    pause would. The approval form and its key are the pause's own (``key``), so a decision
    submitted once the API is back resumes the run as if nothing had happened.
    """
    from prefect.client.orchestration import get_client
    from prefect.exceptions import FlowPauseTimeout
    from prefect.input.actions import aread_flow_run_input
    from prefect.input.run_input import keyset_from_paused_state
    from prefect.runtime import flow_run
    from prefect.states import Paused

    loop = asyncio.get_running_loop()
    run_id = UUID(str(flow_run.id))
    keyset = keyset_from_paused_state(Paused(pause_key=key))
    while loop.time() < deadline_s:
        await asyncio.sleep(min(poll_interval_s, max(0.0, deadline_s - loop.time())))
        try:
            async with get_client() as client:
                state = (await client.read_flow_run(run_id)).state
            if state is None or state.is_paused():
                continue
            if state.is_running():
                value = await aread_flow_run_input(keyset["response"], flow_run_id=run_id)
                return PAUSE_AGAIN if value is None else form(**value)
        except Exception as err:
            if api_outage(err):
                continue
            raise
        raise WaitEnded(
            f"the approval run left its pause while Prefect's API was away: "
            f"{state.name}" + (f" ({state.message})" if state.message else "")
        )
    raise FlowPauseTimeout("Flow run was paused and never resumed.")


def leave_pause(flow_run_id: Any) -> None:
    """Take this run out of its Paused state (to Running), so it can end with a reason."""
    from prefect.client.orchestration import get_client
    from prefect.states import Running

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(UUID(str(flow_run_id))).state
        if state is not None and state.is_paused():
            client.set_flow_run_state(UUID(str(flow_run_id)), Running())


def mark_cancelled(plan_id: int, reason: str, *, actor: str = "prefect") -> bool:
    """Mark a waiting plan ``cancelled`` (audited); False when it had left ``proposed``."""
    try:
        plan_store().transition(plan_id, PlanStatus.CANCELLED, actor=actor, comment=reason)
    except (DecisionConflict, StoreError):
        return False
    return True


def on_approval_run_cancelled(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect ``on_cancellation`` hook of approve-plan: its plan is marked cancelled."""
    plan_id = (flow_run.parameters or {}).get("plan_id")
    if plan_id is not None:
        mark_cancelled(
            int(plan_id),
            f"approval run {flow_run.id} was cancelled"
            + (f": {state.message}" if getattr(state, "message", None) else ""),
        )


# -- starting an approval run ------------------------------------------------------------------
_local_runs: dict[int, threading.Thread] = {}
_local_lock = threading.Lock()


def start_approval_run(plan_id: int, *, requested_by: str, approval_poll_s: int) -> str:
    """Start the approve-plan run of ``plan_id`` without waiting for it; returns its flow run
    id, or ``local-thread`` when it runs in a thread of this process (no deployment, and
    this is not a deployed run). Raises :class:`ApprovalRunUnavailable` in a deployed run
    whose Prefect server has no approve-plan deployment."""
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound
    from prefect.runtime import deployment

    params = {"plan_id": plan_id, "requested_by": requested_by, "approval_poll_s": approval_poll_s}
    try:
        run: FlowRun = run_deployment(  # type: ignore[assignment]
            APPROVE_PLAN_DEPLOYMENT,
            parameters=params,
            timeout=0,
            flow_run_name=f"approve-plan-{plan_id}",
            # the store's id too: plan ids are per store, and stores may share a server
            idempotency_key=f"approve-plan-{run_key_scope()}-{plan_id}",
            # a run of its own, not a subflow: it outlives the cycle, and only a top-level run
            # can suspend (approval.suspend)
            as_subflow=False,
        )
        return str(run.id)
    except ObjectNotFound:
        if deployment.id:
            raise ApprovalRunUnavailable(
                f"plan {plan_id} needs a person, but this Prefect server has no "
                f"{APPROVE_PLAN_DEPLOYMENT!r} deployment: deploy prefect.yaml "
                "(prefect deploy --all)"
            ) from None
    _start_local(plan_id, params)
    return "local-thread"


@capplan_io_task(name="request-approval", task_run_name="request-approval-{plan_id}", retries=2)
def request_approval(plan_id: int, requested_by: str, approval_poll_s: int) -> str:
    """Start the plan's approve-plan run (:func:`start_approval_run`) and return its id. When
    none can be started, nobody could approve the plan: it is held at the current count,
    with the reason, instead of waiting for its deadline."""
    try:
        return start_approval_run(
            plan_id, requested_by=requested_by, approval_poll_s=approval_poll_s
        )
    except ApprovalRunUnavailable as err:
        get_run_logger().error("%s", err)
        with contextlib.suppress(DecisionConflict):
            plan_store().transition(plan_id, PlanStatus.HELD, actor="capplan", comment=str(err))
        return "none"


def _start_local(plan_id: int, params: dict[str, Any]) -> None:
    from flows.approve_plan import approve_plan

    def run() -> None:
        try:
            asyncio.run(approve_plan(**params))  # type: ignore[arg-type]
        except BaseException as err:  # noqa: BLE001 - logged; the plan expires or is swept
            with contextlib.suppress(Exception):
                get_run_logger().error("approve-plan %s failed: %s", plan_id, err)

    thread = threading.Thread(target=run, name=f"approve-plan-{plan_id}", daemon=True)
    with _local_lock:
        _local_runs[plan_id] = thread
    thread.start()


def local_approval_running(plan_id: int) -> bool:
    """True while this process's approve-plan thread for ``plan_id`` runs."""
    with _local_lock:
        thread = _local_runs.get(plan_id)
    return thread is not None and thread.is_alive()


def local_approval_runs_alive() -> bool:
    """True while any approve-plan thread of this process runs."""
    with _local_lock:
        return any(t.is_alive() for t in _local_runs.values())


def join_local_approval_runs(timeout_s: float = 600.0) -> list[int]:
    """Wait for this process's approve-plan threads; the plan ids still running after
    ``timeout_s`` seconds."""
    with _local_lock:
        runs = dict(_local_runs)
    for thread in runs.values():
        thread.join(timeout_s)
    with _local_lock:
        for pid, thread in runs.items():
            if not thread.is_alive():
                _local_runs.pop(pid, None)
        return sorted(_local_runs)


def cancel_orphaned_approvals() -> list[int]:
    """Plans still ``proposed`` whose approve-plan run has ended without deciding them (it was
    cancelled while suspended, its process was killed, it crashed): marked ``cancelled``,
    with the run's state as the reason. Returns their ids. Run by the apply-due sweeper."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    done = []
    with get_client(sync_client=True) as client:
        for plan in plan_store().list_plans(status=PlanStatus.PROPOSED, limit=1000):
            if not plan.flow_run_id or "approval_deadline" not in plan.details:
                continue  # not waiting for a person (advisory), or not yet linked
            try:
                run = client.read_flow_run(UUID(plan.flow_run_id))
            except (ObjectNotFound, ValueError):
                continue
            if (run.parameters or {}).get("plan_id") != plan.id:
                continue  # still linked to the run that planned it: no approval run yet
            state = run.state
            if state is None or state.type.value not in ENDED_RUN_STATES:
                continue
            why = (
                f"its approval run {plan.flow_run_id} is {state.name}"
                + (f": {state.message}" if state.message else "")
                + " without a decision"
            )
            if mark_cancelled(plan.id, why, actor="capplan"):
                done.append(plan.id)
    return done
