"""Compiled kernels of the fluid level: a fast Erlang C and the per-replication time-stepping.

Per step of length dt with arrival rate λ, ``c`` ready workers and service rate μ:
- the fluid backlog follows Q' = max(0, Q + λ·dt − c·μ·dt) (Newell, *Applications of Queueing
  Theory*, 1982, ch. 2; the deterministic fluid limit);
- jobs arriving while Q > 0 wait Q̄/(cμ) behind it (Q̄ the mean backlog they meet), plus the
  stationary part;
- the stationary part is M/M/c's: P(wait) = C(c, λ/μ) (Erlang C), the conditional wait
  exponential with mean k/(cμ − λ), k = (1 + c_s²)/2 (Allen–Cunneen, Poisson arrivals), with λ
  capped at ``RHO_CAP``·cμ so an overloaded step stays finite (its fluid backlog carries it).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

RHO_CAP = 0.98


@njit(cache=True)
def erlang_c_fast(workers: int, load: float) -> float:
    """Erlang C(c, a) by the Erlang B recursion B(k) = a·B(k−1)/(k + a·B(k−1)) started at
    k0 = a − 10√a with B(k0) ≈ 1 − k0/a: below the load the recursion contracts (by k/a per
    step), so the start error vanishes (≈ e^−50) and the cost is O(√a + c − a), not O(c)."""
    if load <= 0.0:
        return 0.0
    if load >= workers:
        return 1.0
    k0 = int(load - 10.0 * math.sqrt(load) - 1.0)
    b = 1.0
    if k0 > 0:
        b = 1.0 - k0 / load
    else:
        k0 = 0
    for k in range(k0 + 1, workers + 1):
        ab = load * b
        b = ab / (k + ab)
    return min(1.0, workers * b / ((workers - load) + load * b))


@njit(cache=True)
def _tail(
    x: float, wt: np.ndarray, f_b: np.ndarray, w_b: np.ndarray, cw: np.ndarray, m: np.ndarray
) -> float:
    """Arrival-weighted P(W > x) over the steps of one replication."""
    total = 0.0
    for k in range(wt.size):
        if wt[k] == 0.0:
            continue
        p = 0.0
        if cw[k] > 0.0:
            p = cw[k] * math.exp(-x / m[k]) if m[k] > 0.0 else 0.0
        if f_b[k] > 0.0:
            if x < w_b[k]:
                pb = 1.0
            else:
                pb = cw[k] * math.exp(-(x - w_b[k]) / m[k]) if m[k] > 0.0 else 0.0
            p = f_b[k] * pb + (1.0 - f_b[k]) * p
        total += wt[k] * p
    return total


@njit(cache=True)
def wait_quantile(
    q: float, wt: np.ndarray, f_b: np.ndarray, w_b: np.ndarray, cw: np.ndarray, m: np.ndarray
) -> float:
    """The q-quantile of the arrival-weighted wait mixture, by bisection."""
    total = wt.sum()
    if total <= 0.0:
        return 0.0
    target = (1.0 - q) * total
    if _tail(0.0, wt, f_b, w_b, cw, m) <= target:
        return 0.0
    hi = 1.0
    while _tail(hi, wt, f_b, w_b, cw, m) > target and hi < 1e12:
        hi *= 4.0
    lo = 0.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if _tail(mid, wt, f_b, w_b, cw, m) > target:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-6 * hi:
            break
    return 0.5 * (lo + hi)


@njit(cache=True)
def run_fluid_kernel(
    rates,
    paths,
    step_len,
    step_win,
    step_ready,
    wait_floor,
    down_frac,
    counted,
    mu,
    k_ac,
    q0,
    slo_wait_s,
    out_late,
    out_backlog,
    out_util,
    out_points,
    out_jobs,
):
    """Time-step every replication; fills the ``out_*`` arrays (see ``fluid.run_fluid``)."""
    n_rep = paths.size
    n_k = step_len.size
    wt = np.zeros(n_k)
    f_b = np.zeros(n_k)
    w_b = np.zeros(n_k)
    cw = np.zeros(n_k)
    m = np.zeros(n_k)
    n_w = out_late.shape[1]
    busy_w = np.zeros(n_w)
    ready_w = np.zeros(n_w)
    arr_w = np.zeros(n_w)
    for r in range(n_rep):
        q = q0
        last_c = -1
        last_lam = -1.0
        c_val = 0.0
        busy_w[:] = 0.0
        ready_w[:] = 0.0
        arr_w[:] = 0.0
        mean_acc = 0.0
        prob_acc = 0.0
        m_val = 0.0
        n_mix = 0
        for k in range(n_k):
            w = step_win[k]
            dt = step_len[k]
            lam = rates[paths[r], w]
            c = step_ready[k] - int(round(down_frac[r, w] * step_ready[k]))
            cap_rate = c * mu
            q1 = max(0.0, q + (lam - cap_rate) * dt)
            # share of this step's arrivals that meet a fluid backlog, and its mean size
            if q1 > 0.0:
                frac, q_bar = 1.0, 0.5 * (q + q1)
            elif q > 0.0:
                tau = q / (cap_rate - lam)
                frac, q_bar = tau / dt, 0.5 * q
            else:
                frac, q_bar = 0.0, 0.0
            if c != last_c or lam != last_lam:
                lam_eff = min(lam, RHO_CAP * cap_rate)
                c_val = erlang_c_fast(c, lam_eff / mu) if c > 0 else 1.0
                m_val = k_ac / (cap_rate - lam_eff) if c > 0 else 0.0
                last_c, last_lam = c, lam
            wb = q_bar / cap_rate if c > 0 else wait_floor[k] + dt
            if c == 0:
                frac = 1.0
            weight = lam * dt if counted[k] else 0.0
            mean_acc += weight * (frac * wb + c_val * m_val)
            prob_acc += weight * (frac + (1.0 - frac) * c_val)
            arr_w[w] += weight
            if slo_wait_s >= 0.0:
                x = slo_wait_s
                p_st = c_val * math.exp(-x / m_val) if m_val > 0.0 else 0.0
                p_bl = (
                    1.0 if x < wb else (c_val * math.exp(-(x - wb) / m_val) if m_val > 0.0 else 0.0)
                )
                out_late[r, w] += weight * (frac * p_bl + (1.0 - frac) * p_st)
            # the wait mixture for the p95: steps without backlog and equal parameters merge
            j = n_mix - 1
            if (
                weight > 0.0
                and j >= 0
                and frac == 0.0
                and f_b[j] == 0.0
                and cw[j] == c_val
                and m[j] == m_val
            ):
                wt[j] += weight
            elif weight > 0.0:
                wt[n_mix], f_b[n_mix], w_b[n_mix] = weight, frac, wb
                cw[n_mix], m[n_mix] = c_val, m_val
                n_mix += 1
            lq = lam * c_val * m_val  # stationary mean queue (Little's law)
            out_backlog[r, w] = max(out_backlog[r, w], max(q, q1) + lq)
            busy = c * dt if q1 > 0.0 else min(lam / mu, c) * dt
            busy_w[w] += busy
            ready_w[w] += c * dt
            q = q1
        total = wt[:n_mix].sum()
        out_jobs[r] = total
        for w in range(n_w):
            out_late[r, w] = out_late[r, w] / arr_w[w] if arr_w[w] > 0.0 else 0.0
            out_util[r, w] = busy_w[w] / ready_w[w] if ready_w[w] > 0.0 else np.nan
        if total > 0.0:
            out_points[r, 0] = mean_acc / total
            out_points[r, 1] = prob_acc / total
            out_points[r, 2] = wait_quantile(
                0.95, wt[:n_mix], f_b[:n_mix], w_b[:n_mix], cw[:n_mix], m[:n_mix]
            )
