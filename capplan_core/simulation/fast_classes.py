"""The fast engine for shared pools: ``fast_engine.run_events`` with one FIFO per class.

Same rules as the SimPy model with ``class_queues.ClassQueues`` (and so the same waits from
the same inputs): a worker that frees up takes the head of the class the discipline picks
(``strict`` 0, ``round_robin`` 1, ``weighted`` 2; see ``classes``). The slots' arrays, scaling
and the end of the run are ``fast_engine``'s, shared by both loops; the rest mirrors
``run_events`` line for line except where the queue is touched; keep the two in step. The
queues share one buffer: class k owns a ring of as many places as it has jobs.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from capplan_core.simulation.classes import DISCIPLINE_CODES
from capplan_core.simulation.fast_engine import (
    _make_ready,
    _reheap,
    _scale,
    _stamp,
    run_over,
    slot_arrays,
)
from capplan_core.simulation.fast_kernels import INF, idle_pop, idle_push, integrate, note_backlog
from capplan_core.simulation.records import BUSY, DOWN, FREE, IDLE, JobRunRecord
from capplan_core.simulation.sampling import ReplicationInputs
from capplan_core.simulation.scenario import SimScenario


@njit(cache=True)
def pick_class(q_len, disc, last, weights, pick_u, picks):
    """The class whose head job a freed worker takes (some class has a job waiting)."""
    n_cls = q_len.size
    if disc == 0:
        for k in range(n_cls):
            if q_len[k] > 0:
                return k
    elif disc == 1:
        for i in range(1, n_cls + 1):
            k = (last + i) % n_cls
            if q_len[k] > 0:
                return k
    else:
        u = pick_u[picks % pick_u.size]
        total = 0.0
        for k in range(n_cls):
            if q_len[k] > 0:
                total += weights[k]
        acc = 0.0
        chosen = -1
        for k in range(n_cls):
            if q_len[k] > 0:
                acc += weights[k]
                chosen = k
                if u * total < acc:
                    return k
        return chosen
    return -1


@njit(cache=True)
def run_class_events(
    arrivals,
    services,
    cls,
    n_cls,
    disc,
    weights,
    pick_u,
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
    """Simulate one replication of a shared pool; fills ``waits`` and the window arrays."""
    n = arrivals.size
    n_slots = draws.shape[0]
    state, leaving, job_of, ev_t, fail_t, fail_k, key, tie, seq, heap, pos, idle, in_idle = (
        slot_arrays(n_slots)
    )
    n_idle = 0
    q_cap = np.ones(n_cls, np.int64)
    for j in range(n):
        q_cap[cls[j]] += 1
    q_off = np.zeros(n_cls, np.int64)
    for k in range(1, n_cls):
        q_off[k] = q_off[k - 1] + q_cap[k - 1]
    qbuf = np.empty(q_off[n_cls - 1] + q_cap[n_cls - 1], np.int64)
    q_head = np.zeros(n_cls, np.int64)
    q_len = np.zeros(n_cls, np.int64)
    q_tot = 0
    last = n_cls - 1
    picks = 0
    queued_at = np.zeros(max(n, 1))
    busy = 0
    ready = 0
    for s in range(c0):
        n_idle = _make_ready(s, 0.0, state, fail_t, fail_k, draws, idle, n_idle, in_idle, seq)
        ready += 1
        _reheap(s, ev_t, fail_t, seq, heap, pos, key, tie)
    for j in range(n_backlog):
        k = cls[j]
        qbuf[q_off[k] + (q_head[k] + q_len[k]) % q_cap[k]] = j
        q_len[k] += 1
        q_tot += 1
    t = 0.0
    t_prev = 0.0
    next_arr = n_backlog
    next_step = 0
    n_steps = step_t.size
    while True:
        while q_tot > 0 and n_idle > 0:
            s = idle[0]
            n_idle = idle_pop(idle, n_idle)
            in_idle[s] = False
            if state[s] != IDLE:
                continue
            k = pick_class(q_len, disc, last, weights, pick_u, picks)
            if disc == 1:
                last = k
            elif disc == 2:
                picks += 1
            j = qbuf[q_off[k] + q_head[k]]
            q_head[k] = (q_head[k] + 1) % q_cap[k]
            q_len[k] -= 1
            q_tot -= 1
            waits[j] += t - queued_at[j]
            state[s] = BUSY
            job_of[s] = j
            busy += 1
            ev_t[s] = t + services[j]
            _stamp(s, seq)
            _reheap(s, ev_t, fail_t, seq, heap, pos, key, tie)
        note_backlog(t, q_tot, window_s, horizon_s, win_backlog)
        s = heap[0] if n_slots > 0 else -1
        t_slot = key[s] if s >= 0 else INF
        t_step = step_t[next_step] if next_step < n_steps else INF
        t_arr = arrivals[next_arr] if next_arr < n else INF
        t_next = min(t_slot, t_step, t_arr)
        over = run_over(t_next, q_tot, horizon_s, stop_s)
        if over:
            integrate(
                t_prev,
                horizon_s,
                busy,
                ready,
                q_tot,
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
            t_prev, t, busy, ready, q_tot, window_s, horizon_s, win_busy, win_ready, win_backlog
        )
        t_prev = t
        if t_slot <= t_step and t_slot <= t_arr:
            if fail_t[s] < ev_t[s]:  # failure: the job goes back to the head of its class
                if state[s] == BUSY:
                    j = job_of[s]
                    job_of[s] = -1
                    busy -= 1
                    k = cls[j]
                    q_head[k] = (q_head[k] - 1) % q_cap[k]
                    qbuf[q_off[k] + q_head[k]] = j
                    q_len[k] += 1
                    q_tot += 1
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
            k = cls[j]
            qbuf[q_off[k] + (q_head[k] + q_len[k]) % q_cap[k]] = j
            q_len[k] += 1
            q_tot += 1
            queued_at[j] = t
    for k in range(n_cls):  # never started: count the wait so far
        for _ in range(q_len[k]):
            j = qbuf[q_off[k] + q_head[k]]
            q_head[k] = (q_head[k] + 1) % q_cap[k]
            waits[j] += t - queued_at[j]


def run_fast_classes(scenario: SimScenario, inputs: ReplicationInputs) -> JobRunRecord:
    """One replication of a shared pool on the compiled engine (same rules as SimPy's)."""
    sc = scenario
    n_w = sc.n_windows
    waits = np.zeros(inputs.arrival_times_s.size)
    win_backlog, win_busy, win_ready = np.zeros(n_w), np.zeros(n_w), np.zeros(n_w)
    step_t = np.array([t for t, _ in sc.steps], dtype=float)
    step_w = np.array([sc.effective_target(w) for _, w in sc.steps], dtype=np.int64)
    weights = np.array([c.weight for c in sc.classes], dtype=float)
    pick_u = inputs.pick_u if inputs.pick_u is not None else np.zeros(1)
    run_class_events(
        inputs.arrival_times_s,
        inputs.service_times_s,
        np.asarray(inputs.job_class, dtype=np.int64),
        len(sc.classes),
        DISCIPLINE_CODES[sc.discipline],
        weights,
        pick_u,
        inputs.n_backlog,
        inputs.failure_draws_s,
        sc.effective_target(sc.initial_workers),
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
