"""Erlang B/C and M/M/c wait metrics against closed forms, 60-digit references and textbooks."""

from __future__ import annotations

import math
from decimal import Decimal, localcontext

import pytest

from capplan_core.queueing import (
    erlang_b,
    erlang_c,
    mean_queue_length,
    mean_wait_s,
    prob_wait_exceeds,
    utilization,
    wait_probability,
    wait_quantile_s,
)

REL = 1e-9


def _ref_erlang_c(c: int, a: float) -> Decimal:
    """Erlang C by direct summation of a^k/k! in 60-digit decimal arithmetic (independent of
    the float recursion under test): C = T / (Σ_{k<c} a^k/k! + T), T = a^c/c! · c/(c − a)."""
    with localcontext() as ctx:
        ctx.prec = 60
        ad = Decimal(a)
        term, total = Decimal(1), Decimal(0)
        for k in range(c):
            total += term
            term = term * ad / (k + 1)  # term is now a^(k+1)/(k+1)!
        tail = term * c / (c - ad)
        return tail / (total + tail)


def _ref_erlang_b(c: int, a: float) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 60
        ad = Decimal(a)
        term, total = Decimal(1), Decimal(1)
        for k in range(1, c + 1):
            term = term * ad / k
            total += term
        return term / total


# (arrival jobs/s, service jobs/s per worker, workers): c = 1 .. 10 000, utilisation to 0.9999
GRID = [
    (0.5, 1.0, 1),
    (0.99, 1.0, 1),
    (0.9999, 1.0, 1),
    (2.0, 1.0, 3),
    (1.5, 1.0, 2),
    (4.0, 0.5, 10),
    (7.2, 0.8, 10),
    (45.0, 1.0, 50),
    (99.0, 2.0, 50),
    (0.3, 0.01, 31),
    (900.0, 1.0, 1000),
    (999.9, 1.0, 1000),
    (4500.0, 1.0, 5000),
    (4990.0, 1.0, 5000),
    (9000.0, 1.0, 10_000),
    (9999.0, 1.0, 10_000),
    (1234.5, 0.25, 5000),
]


@pytest.mark.parametrize(("lam", "mu", "c"), GRID)
def test_erlang_c_matches_60_digit_summation(lam, mu, c):
    a = lam / mu
    assert erlang_c(c, a) == pytest.approx(float(_ref_erlang_c(c, a)), rel=REL)
    assert erlang_b(c, a) == pytest.approx(float(_ref_erlang_b(c, a)), rel=REL)


@pytest.mark.parametrize(("lam", "mu", "c"), GRID)
def test_wait_metrics_match_closed_forms(lam, mu, c):
    a = lam / mu
    cw = float(_ref_erlang_c(c, a))
    gap = c * mu - lam
    assert wait_probability(lam, mu, c) == pytest.approx(cw, rel=REL)
    assert mean_wait_s(lam, mu, c) == pytest.approx(cw / gap, rel=REL)
    assert mean_queue_length(lam, mu, c) == pytest.approx(lam * cw / gap, rel=REL)
    assert utilization(lam, mu, c) == pytest.approx(lam / (c * mu), rel=1e-15)
    for t in (0.0, 0.1, 1.0, 30.0, 600.0):
        assert prob_wait_exceeds(lam, mu, c, t) == pytest.approx(
            cw * math.exp(-gap * t), rel=REL, abs=1e-300
        )
    for q in (0.5, 0.8, 0.95, 0.99, 0.999):
        want = 0.0 if cw <= 1 - q else math.log(cw / (1 - q)) / gap
        got = wait_quantile_s(lam, mu, c, q)
        assert got == pytest.approx(want, rel=REL, abs=1e-12)
        if got > 0:  # the quantile is where the tail crosses 1 − q
            assert prob_wait_exceeds(lam, mu, c, got) == pytest.approx(1 - q, rel=1e-9)


@pytest.mark.parametrize("rho", [0.01, 0.3, 0.7, 0.9, 0.99, 0.9999])
def test_mm1_closed_forms(rho):
    mu = 2.0
    lam = rho * mu
    assert wait_probability(lam, mu, 1) == pytest.approx(rho, rel=1e-12)
    assert mean_wait_s(lam, mu, 1) == pytest.approx(rho / (mu - lam), rel=1e-12)
    assert mean_queue_length(lam, mu, 1) == pytest.approx(rho**2 / (1 - rho), rel=1e-12)
    assert wait_quantile_s(lam, mu, 1, 0.95) == pytest.approx(
        max(0.0, math.log(rho / 0.05) / (mu - lam)), rel=1e-12, abs=1e-15
    )


@pytest.mark.parametrize("a", [0.1, 0.5, 1.0, 1.5, 1.99])
def test_mm2_closed_form(a):
    # M/M/2: C(2, a) = a² / (2 + a)
    assert erlang_c(2, a) == pytest.approx(a * a / (2 + a), rel=1e-13)


def test_textbook_values():
    # Erlang C for A = 2 Erlangs, c = 3 servers is exactly 4/9
    assert erlang_c(3, 2.0) == pytest.approx(4 / 9, rel=1e-14)
    # Classic call centre: 100 calls per 30 min, 3-min handling → A = 10 Erlangs, 11 agents:
    # P(wait) = 68.21 %, 20-s service level = 1 − 0.6821·e^(−(11−10)·20/180) = 38.96 %,
    # average speed of answer = 0.6821 · 180 / (11 − 10) = 122.8 s
    lam, mu = 100 / 1800, 1 / 180
    assert wait_probability(lam, mu, 11) == pytest.approx(0.6821, abs=5e-5)
    assert 1 - prob_wait_exceeds(lam, mu, 11, 20.0) == pytest.approx(0.3896, abs=5e-5)
    assert mean_wait_s(lam, mu, 11) == pytest.approx(122.78, abs=5e-3)
    # 120 customers/h, 3-min service, 10 assistants (A = 6): "probability of waiting about
    # 0.10"; the Erlang B table value B(10, 6) = 0.0431
    assert erlang_c(10, 6.0) == pytest.approx(0.1013, abs=5e-5)
    assert erlang_b(10, 6.0) == pytest.approx(0.0431, abs=5e-5)
    # Erlang B tables: B(1, a) = a/(1 + a); B(5, 2) = 0.0367
    assert erlang_b(1, 3.0) == pytest.approx(0.75, rel=1e-15)
    assert erlang_b(5, 2.0) == pytest.approx(0.0367, abs=5e-5)


@pytest.mark.parametrize(("lam", "c"), [(1.0, 1), (3.0, 3), (5.0, 3), (1.0, 0)])
def test_unstable_system_reports_certain_wait_not_nan(lam, c):
    mu = 1.0
    assert wait_probability(lam, mu, c) == 1.0
    assert mean_wait_s(lam, mu, c) == math.inf
    assert mean_queue_length(lam, mu, c) == math.inf
    assert prob_wait_exceeds(lam, mu, c, 60.0) == 1.0
    assert wait_quantile_s(lam, mu, c, 0.95) == math.inf


def test_no_arrivals_means_no_wait():
    assert wait_probability(0.0, 1.0, 0) == 0.0
    assert mean_wait_s(0.0, 1.0, 3) == 0.0
    assert wait_quantile_s(0.0, 1.0, 3, 0.99) == 0.0
    assert utilization(0.0, 1.0, 0) == 0.0


def test_allen_cunneen_scales_waits_by_mean_scv():
    lam, mu, c = 8.0, 1.0, 10
    base_w, base_q = mean_wait_s(lam, mu, c), wait_quantile_s(lam, mu, c, 0.95)
    k = (1.0 + 3.0) / 2  # Poisson arrivals (c_a² = 1), c_s² = 3
    assert mean_wait_s(lam, mu, c, service_scv=3.0) == pytest.approx(k * base_w, rel=1e-14)
    assert mean_queue_length(lam, mu, c, service_scv=3.0) == pytest.approx(
        lam * k * base_w, rel=1e-14
    )
    assert wait_quantile_s(lam, mu, c, 0.95, service_scv=3.0) == pytest.approx(
        k * base_q, rel=1e-14
    )
    # M/D/c (c_s² = 0) halves the M/M/c wait; P(wait) is still Erlang C
    assert mean_wait_s(lam, mu, c, service_scv=0.0) == pytest.approx(base_w / 2, rel=1e-14)
    assert wait_probability(lam, mu, c) == erlang_c(c, 8.0)
    cw = erlang_c(c, 8.0)
    assert prob_wait_exceeds(lam, mu, c, 2.0, arrival_scv=0.5, service_scv=1.5) == (
        pytest.approx(cw * math.exp(-(c * mu - lam) * 2.0 / 1.0), rel=1e-14)
    )


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: erlang_c(-1, 1.0), "workers"),
        (lambda: erlang_c(2, float("nan")), "offered load"),
        (lambda: mean_wait_s(-1.0, 1.0, 2), "arrival_rate_per_s"),
        (lambda: mean_wait_s(1.0, 0.0, 2), "service_rate_per_s"),
        (lambda: wait_quantile_s(1.0, 1.0, 2, 1.0), "q must be in (0, 1)"),
        (lambda: mean_wait_s(1.0, 1.0, 2, service_scv=-1), "service_scv"),
        (lambda: prob_wait_exceeds(1.0, 1.0, 2, -5.0), "t_s"),
    ],
)
def test_bad_arguments_name_the_argument(call, needle):
    with pytest.raises(ValueError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        call()
