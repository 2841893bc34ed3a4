"""Compiled (numba) helpers of the fast engine: heaps, the job queue and window accounting.

The event loop itself lives in ``fast_engine``; these are the small pieces it is built from.
"""

from __future__ import annotations

import numpy as np
from numba import njit

INF = np.inf


@njit(cache=True)
def heap_sift_up(
    heap: np.ndarray, pos: np.ndarray, key: np.ndarray, tie: np.ndarray, i: int
) -> None:
    """Indexed min-heap of slots keyed by (``key[slot]``, ``tie[slot]``): move entry ``i`` up.

    ``tie`` is the order in which the event was scheduled, as SimPy breaks ties."""
    s = heap[i]
    while i > 0:
        parent = (i - 1) >> 1
        p = heap[parent]
        if key[p] < key[s] or (key[p] == key[s] and tie[p] < tie[s]):
            break
        heap[i] = p
        pos[p] = i
        i = parent
    heap[i] = s
    pos[s] = i


@njit(cache=True)
def heap_sift_down(
    heap: np.ndarray, pos: np.ndarray, key: np.ndarray, tie: np.ndarray, i: int
) -> None:
    n = heap.size
    s = heap[i]
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        c = heap[child]
        if child + 1 < n:
            c2 = heap[child + 1]
            if key[c2] < key[c] or (key[c2] == key[c] and tie[c2] < tie[c]):
                child += 1
                c = c2
        if key[s] < key[c] or (key[s] == key[c] and tie[s] < tie[c]):
            break
        heap[i] = c
        pos[c] = i
        i = child
    heap[i] = s
    pos[s] = i


@njit(cache=True)
def heap_set(
    heap: np.ndarray,
    pos: np.ndarray,
    key: np.ndarray,
    tie: np.ndarray,
    slot: int,
    value: float,
    order: int,
) -> None:
    """Change ``slot``'s entry to (``value``, ``order``) and restore the heap order."""
    key[slot] = value
    tie[slot] = order
    heap_sift_up(heap, pos, key, tie, pos[slot])
    heap_sift_down(heap, pos, key, tie, pos[slot])


@njit(cache=True)
def idle_push(idle: np.ndarray, n: int, slot: int) -> int:
    """Push a slot on the min-heap of idle slots ``idle[:n]``; returns the new size."""
    i = n
    while i > 0:
        parent = (i - 1) >> 1
        if idle[parent] <= slot:
            break
        idle[i] = idle[parent]
        i = parent
    idle[i] = slot
    return n + 1


@njit(cache=True)
def idle_pop(idle: np.ndarray, n: int) -> int:
    """Remove the smallest slot of ``idle[:n]`` (returned by the caller from ``idle[0]``)."""
    n -= 1
    last = idle[n]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        if child + 1 < n and idle[child + 1] < idle[child]:
            child += 1
        if last <= idle[child]:
            break
        idle[i] = idle[child]
        i = child
    if n > 0:
        idle[i] = last
    return n


@njit(cache=True)
def integrate(
    t0: float,
    t1: float,
    busy: int,
    ready: int,
    backlog: int,
    window_s: float,
    horizon_s: float,
    win_busy: np.ndarray,
    win_ready: np.ndarray,
    win_backlog: np.ndarray,
) -> None:
    """Add busy/ready worker-seconds over [t0, t1) to their windows; a window entered on the
    way starts with the current backlog."""
    if t0 >= horizon_s:
        return
    t1 = min(t1, horizon_s)
    last = win_busy.size - 1
    w = min(int(t0 / window_s), last)
    while True:
        end = horizon_s if w == last else min((w + 1) * window_s, horizon_s)
        seg = min(t1, end) - t0
        win_busy[w] += busy * seg
        win_ready[w] += ready * seg
        if t1 < end or w == last:
            return
        t0 = end
        w += 1
        if backlog > win_backlog[w]:
            win_backlog[w] = backlog


@njit(cache=True)
def note_backlog(
    t: float, backlog: int, window_s: float, horizon_s: float, win_backlog: np.ndarray
) -> None:
    if t < horizon_s:
        w = min(int(t / window_s), win_backlog.size - 1)
        if backlog > win_backlog[w]:
            win_backlog[w] = backlog


@njit(cache=True)
def run_static(
    arrivals: np.ndarray,
    services: np.ndarray,
    workers: int,
    window_s: float,
    horizon_s: float,
    stop_s: float,
    waits: np.ndarray,
    win_backlog: np.ndarray,
    win_busy: np.ndarray,
    win_ready: np.ndarray,
) -> None:
    """FCFS with a constant pool and no failures: each job starts at max(arrival, earliest
    free worker), so a heap of worker free-times is the whole model (Kiefer & Wolfowitz's
    workload recursion for G/G/c)."""
    n = arrivals.size
    last = win_busy.size - 1
    free = np.zeros(workers)
    starts = np.empty(n)
    p = 0  # jobs started by the current arrival time (starts are non-decreasing)
    w_arr = 0  # window of the current arrival
    w_st = 0  # window of the current start
    end_arr = horizon_s if last == 0 else window_s
    end_st = end_arr
    for i in range(n):
        a = arrivals[i]
        st = free[0] if free[0] > a else a
        if st > stop_s:
            for j in range(i, n):
                waits[j] = stop_s - arrivals[j]
                starts[j] = INF
            break
        waits[i] = st - a
        starts[i] = st
        sv = services[i]
        v = st + sv
        k = 0  # replace the heap top with this worker's new free time
        while True:
            c = 2 * k + 1
            if c >= workers:
                break
            if c + 1 < workers and free[c + 1] < free[c]:
                c += 1
            if v <= free[c]:
                break
            free[k] = free[c]
            k = c
        free[k] = v
        while p <= i and starts[p] <= a:
            p += 1
        while a >= end_arr and w_arr < last:
            w_arr += 1
            end_arr = horizon_s if w_arr == last else (w_arr + 1) * window_s
        if i + 1 - p > win_backlog[w_arr]:
            win_backlog[w_arr] = i + 1 - p
        if st < horizon_s:  # busy time, split at window ends
            while st >= end_st and w_st < last:
                w_st += 1
                end_st = horizon_s if w_st == last else (w_st + 1) * window_s
            if v <= end_st:
                win_busy[w_st] += sv
            else:
                integrate(st, v, 1, 0, 0, window_s, horizon_s, win_busy, win_ready, win_backlog)
    for w in range(last + 1):  # backlog carried into each window, and ready time
        edge = w * window_s
        end = horizon_s if w == last else min((w + 1) * window_s, horizon_s)
        win_ready[w] = workers * (end - edge)
        if w > 0:
            q = np.searchsorted(arrivals, edge, "right") - np.searchsorted(starts, edge, "right")
            if q > win_backlog[w]:
                win_backlog[w] = q
