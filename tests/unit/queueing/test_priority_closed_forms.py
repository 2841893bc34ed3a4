"""M/M/c non-preemptive priority: the exact formulas against closed forms and an independent
computation of the same law.

Golden numbers: Erlang C for c = 3, a = 2.5 is 125/178, so Cobham's waits for λ = (1, 1.5),
μ = 1 are C/2 = 125/356 and 3·C = 375/178. The class-k law (Davis 1966) is checked against
the absorption time of its birth–death chain, computed by a matrix exponential
(``scipy.sparse.linalg.expm_multiply``), and its mean against Cobham's.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.integrate import quad
from scipy.sparse.linalg import expm_multiply

from capplan_core.queueing import erlang
from capplan_core.queueing.laplace import invert_euler
from capplan_core.queueing.priority import (
    all_busy_probability,
    class_wait_quantile_s,
    class_wait_tail,
    cobham_mean_waits_s,
    conditional_tail,
    decreasing_root,
)


def test_golden_cobham_waits_for_two_classes_on_three_workers():
    c_wait = all_busy_probability([1.0, 1.5], 1.0, 3)
    assert c_wait == pytest.approx(125 / 178, rel=1e-13)
    w = cobham_mean_waits_s([1.0, 1.5], 1.0, 3)
    assert w[0] == pytest.approx(125 / 356, rel=1e-13)
    assert w[1] == pytest.approx(375 / 178, rel=1e-13)


@pytest.mark.parametrize(
    ("rate", "mu", "c"), [(2.5, 1.0, 3), (45.0, 0.5, 100), (0.3, 2.0, 1), (950.0, 1.0, 1000)]
)
def test_one_class_is_erlang_c(rate, mu, c):
    assert cobham_mean_waits_s([rate], mu, c)[0] == pytest.approx(
        erlang.mean_wait_s(rate, mu, c), rel=1e-12
    )
    for t in (0.0, 0.01, 0.5, 3.0):
        assert class_wait_tail([rate], mu, c, 0, t) == pytest.approx(
            erlang.prob_wait_exceeds(rate, mu, c, t), rel=1e-12, abs=1e-300
        )
    for q in (0.5, 0.9, 0.95, 0.999):
        assert class_wait_quantile_s([rate], mu, c, 0, q) == pytest.approx(
            erlang.wait_quantile_s(rate, mu, c, q), rel=1e-12, abs=1e-15
        )


def test_highest_class_has_the_closed_form_tail():
    rates, mu, c = [2.0, 3.0, 1.0], 0.8, 9
    c_wait = all_busy_probability(rates, mu, c)
    for t in (0.1, 1.0, 4.0):
        assert class_wait_tail(rates, mu, c, 0, t) == pytest.approx(
            c_wait * math.exp(-(c * mu - rates[0]) * t), rel=1e-12
        )


@pytest.mark.parametrize(
    ("rates", "mu", "c"),
    [
        ([1.0, 1.5], 1.0, 3),
        ([2.0, 3.0, 4.0], 1.0, 11),
        ([0.5, 7.0, 1.0], 1.0, 10),
        ([10.0, 20.0, 5.0, 4.0], 0.25, 160),
    ],
)
def test_cobham_waits_obey_the_conservation_law(rates, mu, c):
    # equal service rates: Σ λ_k W_k = λ W_FCFS (Kleinrock 1965)
    w = cobham_mean_waits_s(rates, mu, c)
    lam = sum(rates)
    assert sum(r * x for r, x in zip(rates, w, strict=True)) == pytest.approx(
        lam * erlang.mean_wait_s(lam, mu, c), rel=1e-12
    )


def _chain_tail(nu: float, above: float, upto: float, t: float, n: int = 4000) -> float:
    """P(W > t | wait): absorption of the birth–death chain (births ν·σ_{k−1}, deaths ν) from
    a geometric start, by a sparse matrix exponential (truncated at n levels)."""
    a = nu * above
    gen = sp.diags(
        [-(a + nu) * np.ones(n), a * np.ones(n - 1), nu * np.ones(n - 1)], [0, 1, -1], format="csc"
    )
    start = (1.0 - upto) * upto ** np.arange(n)
    return float(expm_multiply(gen.T * t, start).sum())


@pytest.mark.parametrize(
    ("nu", "above", "upto"),
    [(10.0, 0.3, 0.6), (4.0, 0.5, 0.9), (100.0, 0.05, 0.5), (2.0, 0.8, 0.85)],
)
def test_davis_law_equals_the_absorption_time_of_its_chain(nu, above, upto):
    for t in (0.01, 0.1, 1.0, 3.0):
        expected = _chain_tail(nu, above, upto, t)
        if expected < 1e-6:
            continue
        assert conditional_tail(nu, above, upto, t) == pytest.approx(expected, rel=1e-7, abs=1e-9)


@pytest.mark.parametrize(("nu", "above", "upto"), [(10.0, 0.3, 0.6), (3.0, 1 / 3, 5 / 6)])
def test_davis_law_has_cobhams_mean(nu, above, upto):
    mean = quad(lambda t: conditional_tail(nu, above, upto, t), 0, math.inf, limit=200)[0]
    assert mean == pytest.approx(1.0 / (nu * (1 - above) * (1 - upto)), rel=1e-7)


def test_quantile_inverts_the_tail():
    rates, mu, c = [2.0, 3.0, 4.0], 1.0, 11
    for k in range(3):
        for q in (0.5, 0.9, 0.99, 0.9999):
            t = class_wait_quantile_s(rates, mu, c, k, q)
            if t == 0.0:  # P(wait) <= 1 − q: most jobs do not wait at all
                assert all_busy_probability(rates, mu, c) <= 1 - q
                continue
            assert class_wait_tail(rates, mu, c, k, t) == pytest.approx(1 - q, abs=1e-10)


def test_euler_inversion_recovers_known_probabilities():
    for t in (0.05, 1.0, 7.0):
        assert invert_euler(lambda s: 1 / (s + 1), t) == pytest.approx(math.exp(-t), abs=1e-10)
        # Erlang-2 tail (rate 2): (1 + 2t)·e^(−2t), transform (s + 4)/(s + 2)²
        assert invert_euler(lambda s: (s + 4) / (s + 2) ** 2, t) == pytest.approx(
            (1 + 2 * t) * math.exp(-2 * t), abs=1e-10
        )


def test_root_finder_meets_its_tolerance():
    root = decreasing_root(lambda t: math.exp(-t) - 0.05, 0.0, 10.0)
    assert root == pytest.approx(math.log(20.0), rel=1e-12)


def test_an_overloaded_lower_class_leaves_higher_classes_finite():
    rates, mu, c = [1.0, 5.0], 1.0, 4  # total 6 > 4 workers, class 1 alone 1 < 4
    w = cobham_mean_waits_s(rates, mu, c)
    assert w[1] == math.inf and w[0] == pytest.approx(1.0 / (4 * (1 - 0.25)), rel=1e-12)
    assert class_wait_tail(rates, mu, c, 1, 100.0) == 1.0
    assert class_wait_quantile_s(rates, mu, c, 1, 0.95) == math.inf
    assert math.isfinite(class_wait_quantile_s(rates, mu, c, 0, 0.95))


def test_no_arrivals_means_no_wait():
    assert cobham_mean_waits_s([0.0, 0.0], 1.0, 2) == [0.0, 0.0]
    assert class_wait_quantile_s([0.0, 0.0], 1.0, 2, 1, 0.95) == 0.0


@pytest.mark.parametrize(
    ("call", "text"),
    [
        (lambda: cobham_mean_waits_s([], 1.0, 2), "at least one class"),
        (lambda: cobham_mean_waits_s([1.0, -2.0], 1.0, 2), "arrival_rates_per_s[1]"),
        (lambda: cobham_mean_waits_s([1.0], 0.0, 2), "service_rate_per_s"),
        (lambda: class_wait_tail([1.0], 1.0, 2, 1, 1.0), "class index k"),
        (lambda: class_wait_tail([1.0], 1.0, 2, 0, -1.0), "t_s"),
        (lambda: class_wait_quantile_s([1.0], 1.0, 2, 0, 1.0), "q must be in (0, 1)"),
    ],
)
def test_bad_input_names_the_argument(call, text):
    with pytest.raises(
        ValueError,
        match=text.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]"),
    ):
        call()
