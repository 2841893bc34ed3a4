"""The fast job-level engine: the SimPy model's rules as a compiled (numba) event loop.

Same inputs, same rules and so the same per-job waits as ``simpy_engine`` (see its docstring
for the rules). Worker slots live in arrays; the next event of each slot (start-up done,
service done, restart done, failure) sits in an indexed min-heap, idle slots in a second heap,
the queue in a ring buffer that can also take a job back at its head. With a constant pool and
no failures the loop reduces to ``fast_kernels.run_static``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from capplan_core.simulation.fast_kernels import (
    INF,
    heap_set,
    idle_pop,
    idle_push,
    integrate,
    note_backlog,
    run_static,
)
from capplan_core.simulation.records import BUSY, DOWN, FREE, IDLE, STARTING, JobRunRecord
from capplan_core.simulation.sampling import ReplicationInputs
from capplan_core.simulation.scenario import SimScenario


@njit(cache=True)
def _make_ready(s, t, state, fail_t, fail_k, draws, idle, n_idle, in_idle, seq):
    state[s] = IDLE
    k = fail_k[s]
    if k < draws.shape[1]:
        fail_t[s] = t + draws[s, k]
        seq[1] += 1
        seq[2 + 2 * s + 1] = seq[1]
        fail_k[s] = k + 1
    else:
        fail_t[s] = INF
    if not in_idle[s]:
        in_idle[s] = True
        n_idle = idle_push(idle, n_idle, s)
    return n_idle


@njit(cache=True)
def _stamp(s, seq):
    """Record the scheduling order of slot ``s``'s own event (SimPy breaks time ties by it)."""
    seq[1] += 1
    seq[2 + 2 * s] = seq[1]


@njit(cache=True)
def _reheap(s, ev_t, fail_t, seq, heap, pos, key, tie):
    if fail_t[s] < ev_t[s]:
        heap_set(heap, pos, key, tie, s, fail_t[s], seq[2 + 2 * s + 1])
    else:
        heap_set(heap, pos, key, tie, s, ev_t[s], seq[2 + 2 * s])


# Shared with fast_classes.run_class_events, whose loop differs from run_events only where a
# queue is touched. Inlined into both loops (numba IR): the compiled loops run as fast as with
# these lines written out in each. A slot's own event (failure, service done, start-up done)
# stays written out in both loops: as one shared function, inlined or not, it made a job-level
# run with steps and failures (60-90 workers) ~40 % slower, though its results were the same.


@njit(inline="always")
def slot_arrays(n_slots):
    """The worker slots' state, event times, failure draws used, event heap and idle heap."""
    state = np.zeros(n_slots, np.int64)
    leaving = np.zeros(n_slots, np.bool_)
    job_of = np.full(n_slots, -1, np.int64)
    ev_t = np.full(n_slots, INF)
    fail_t = np.full(n_slots, INF)
    fail_k = np.zeros(n_slots, np.int64)
    key = np.full(n_slots, INF)
    tie = np.zeros(n_slots, np.int64)
    seq = np.zeros(2 + 2 * n_slots, np.int64)  # [_, counter, (event, failure) stamp per slot]
    heap = np.arange(n_slots)
    pos = np.arange(n_slots)
    idle = np.empty(n_slots, np.int64)
    in_idle = np.zeros(n_slots, np.bool_)
    return state, leaving, job_of, ev_t, fail_t, fail_k, key, tie, seq, heap, pos, idle, in_idle


@njit(inline="always")
def run_over(t_next, n_queued, horizon_s, stop_s):
    """0: the run goes on to ``t_next``; 1: it ends, the horizon passed with no job queued;
    2: it ends at ``stop_s`` (jobs still queued count their wait until then)."""
    if t_next >= horizon_s and n_queued == 0:
        return 1
    if t_next > stop_s:
        return 2
    return 0


@njit(cache=True)
def run_events(
    arrivals,
    services,
    n_backlog,
    draws,
    c0,
    step_t,
    step_w,
    startup_s,
    restart_s,
    window_s,
    horizon_s,
    stop_s,
    waits,
    win_backlog,
    win_busy,
    win_ready,
):
    """Simulate one replication; fills ``waits`` and the per-window arrays in place."""
    n = arrivals.size
    n_slots = draws.shape[0]
    state, leaving, job_of, ev_t, fail_t, fail_k, key, tie, seq, heap, pos, idle, in_idle = (
        slot_arrays(n_slots)
    )
    n_idle = 0
    cap = max(n, 1)
    qbuf = np.empty(cap, np.int64)
    q_head = 0
    q_len = 0
    queued_at = np.zeros(max(n, 1))
    busy = 0
    ready = 0
    for s in range(c0):
        n_idle = _make_ready(s, 0.0, state, fail_t, fail_k, draws, idle, n_idle, in_idle, seq)
        ready += 1
        _reheap(s, ev_t, fail_t, seq, heap, pos, key, tie)
    for j in range(n_backlog):
        qbuf[(q_head + q_len) % cap] = j
        q_len += 1
    t = 0.0
    t_prev = 0.0
    next_arr = n_backlog
    next_step = 0
    n_steps = step_t.size
    while True:
        # ---- hand queued jobs to idle workers, lowest slot first -----------------------
        while q_len > 0 and n_idle > 0:
            s = idle[0]
            n_idle = idle_pop(idle, n_idle)
            in_idle[s] = False
            if state[s] != IDLE:
                continue
            j = qbuf[q_head]
            q_head = (q_head + 1) % cap
            q_len -= 1
            waits[j] += t - queued_at[j]
            state[s] = BUSY
            job_of[s] = j
            busy += 1
            ev_t[s] = t + services[j]
            _stamp(s, seq)
            _reheap(s, ev_t, fail_t, seq, heap, pos, key, tie)
        note_backlog(t, q_len, window_s, horizon_s, win_backlog)
        # ---- next event: slot events, then plan steps, then arrivals -------------------
        s = heap[0] if n_slots > 0 else -1
        t_slot = key[s] if s >= 0 else INF
        t_step = step_t[next_step] if next_step < n_steps else INF
        t_arr = arrivals[next_arr] if next_arr < n else INF
        t_next = min(t_slot, t_step, t_arr)
        over = run_over(t_next, q_len, horizon_s, stop_s)
        if over:
            integrate(
                t_prev,
                horizon_s,
                busy,
                ready,
                q_len,
                window_s,
                horizon_s,
                win_busy,
                win_ready,
                win_backlog,
            )
            if over == 2:
                t = stop_s
            break
        t = t_next
        integrate(
            t_prev, t, busy, ready, q_len, window_s, horizon_s, win_busy, win_ready, win_backlog
        )
        t_prev = t
        if t_slot <= t_step and t_slot <= t_arr:
            if fail_t[s] < ev_t[s]:  # failure
                if state[s] == BUSY:
                    j = job_of[s]
                    job_of[s] = -1
                    busy -= 1
                    q_head = (q_head - 1) % cap
                    qbuf[q_head] = j
                    q_len += 1
                    queued_at[j] = t
                ready -= 1
                fail_t[s] = INF
                if leaving[s]:
                    leaving[s] = False
                    state[s] = FREE
                    ev_t[s] = INF
                else:
                    state[s] = DOWN
                    ev_t[s] = t + restart_s
                    _stamp(s, seq)
            elif state[s] == BUSY:  # service done
                job_of[s] = -1
                busy -= 1
                ev_t[s] = INF
                if leaving[s]:
                    leaving[s] = False
                    state[s] = FREE
                    ready -= 1
                    fail_t[s] = INF
                else:
                    state[s] = IDLE
                    if not in_idle[s]:
                        in_idle[s] = True
                        n_idle = idle_push(idle, n_idle, s)
            else:  # start-up or restart done
                ev_t[s] = INF
                n_idle = _make_ready(s, t, state, fail_t, fail_k, draws, idle, n_idle, in_idle, seq)
                ready += 1
            _reheap(s, ev_t, fail_t, seq, heap, pos, key, tie)
        elif t_step <= t_arr:
            target = step_w[next_step]
            next_step += 1
            n_idle, ready = _scale(
                target,
                t,
                startup_s,
                state,
                leaving,
                ev_t,
                fail_t,
                fail_k,
                draws,
                key,
                tie,
                seq,
                heap,
                pos,
                idle,
                n_idle,
                in_idle,
                ready,
            )
        else:
            j = next_arr
            next_arr += 1
            qbuf[(q_head + q_len) % cap] = j
            q_len += 1
            queued_at[j] = t
    for _ in range(q_len):  # never started: count the wait so far
        j = qbuf[q_head]
        q_head = (q_head + 1) % cap
        waits[j] += t - queued_at[j]


@njit(cache=True)
def _scale(
    target,
    t,
    startup_s,
    state,
    leaving,
    ev_t,
    fail_t,
    fail_k,
    draws,
    key,
    tie,
    seq,
    heap,
    pos,
    idle,
    n_idle,
    in_idle,
    ready,
):
    n_slots = state.size
    active = 0
    for s in range(n_slots):
        if state[s] != FREE and not leaving[s]:
            active += 1
    if target > active:
        need = target - active
        for s in range(n_slots):
            if need == 0:
                break
            if state[s] != FREE:
                continue
            need -= 1
            leaving[s] = False
            if startup_s == 0.0:
                n_idle = _make_ready(s, t, state, fail_t, fail_k, draws, idle, n_idle, in_idle, seq)
                ready += 1
            else:
                state[s] = STARTING
                ev_t[s] = t + startup_s
                _stamp(s, seq)
            _reheap(s, ev_t, fail_t, seq, heap, pos, key, tie)
        return n_idle, ready
    excess = active - target
    for kind in (STARTING, DOWN, IDLE, BUSY):
        for s in range(n_slots - 1, -1, -1):
            if excess == 0:
                return n_idle, ready
            if state[s] != kind or leaving[s]:
                continue
            excess -= 1
            if kind == BUSY:
                leaving[s] = True
                continue
            if kind == IDLE:
                ready -= 1
            state[s] = FREE
            ev_t[s] = INF
            fail_t[s] = INF
            _reheap(s, ev_t, fail_t, seq, heap, pos, key, tie)
    return n_idle, ready


def run_fast(scenario: SimScenario, inputs: ReplicationInputs) -> JobRunRecord:
    """Simulate one replication with the compiled engine (same rules as ``run_simpy``)."""
    sc = scenario
    n_w = sc.n_windows
    waits = np.zeros(inputs.arrival_times_s.size)
    win_backlog = np.zeros(n_w)
    win_busy = np.zeros(n_w)
    win_ready = np.zeros(n_w)
    c0 = sc.effective_target(sc.initial_workers)
    if sc.constant_workers:
        run_static(
            inputs.arrival_times_s,
            inputs.service_times_s,
            c0,
            sc.window_s,
            sc.horizon_s,
            sc.stop_s,
            waits,
            win_backlog,
            win_busy,
            win_ready,
        )
    else:
        step_t = np.array([t for t, _ in sc.steps], dtype=float)
        step_w = np.array([sc.effective_target(w) for _, w in sc.steps], dtype=np.int64)
        run_events(
            inputs.arrival_times_s,
            inputs.service_times_s,
            inputs.n_backlog,
            inputs.failure_draws_s,
            c0,
            step_t,
            step_w,
            float(sc.startup_s),
            float(sc.restart_s),
            sc.window_s,
            sc.horizon_s,
            sc.stop_s,
            waits,
            win_backlog,
            win_busy,
            win_ready,
        )
    return JobRunRecord(waits, win_backlog, win_busy, win_ready)
