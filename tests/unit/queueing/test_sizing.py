"""Sizing to the SLO: least workers, monotone in every metric and in the SLO's strictness."""

from __future__ import annotations

import math
import time
from dataclasses import replace

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from capplan_core.queueing import (
    SloTerms,
    erlang_c,
    failing_terms,
    mean_queue_length,
    mean_wait_s,
    prob_wait_exceeds,
    required_workers,
    wait_probability,
    wait_quantile_s,
)

rates = st.floats(min_value=0.01, max_value=2000.0, allow_nan=False)
service_times = st.floats(min_value=0.01, max_value=20.0, allow_nan=False)
scvs = st.floats(min_value=0.0, max_value=6.0, allow_nan=False)
quantiles = st.floats(min_value=0.5, max_value=0.999)
waits = st.floats(min_value=0.01, max_value=3600.0)


@st.composite
def slo_terms(draw):
    return SloTerms(
        wait_s=draw(st.none() | waits),
        wait_quantile=draw(quantiles),
        mean_wait_s=draw(st.none() | waits),
        max_backlog=draw(st.none() | st.floats(min_value=0.1, max_value=1e5)),
        drain_s=draw(st.none() | st.floats(min_value=1.0, max_value=7200.0)),
        max_utilization=draw(st.none() | st.floats(min_value=0.05, max_value=0.99)),
        current_backlog=draw(st.floats(min_value=0.0, max_value=1e5)),
    )


def _load_ok(lam: float, s: float, terms: SloTerms | None = None) -> bool:
    """Keep every example fast: a few thousand workers at most, draining included."""
    drain_rate = 0.0
    if terms is not None and terms.drain_s is not None:
        drain_rate = terms.current_backlog / terms.drain_s
    return (lam + drain_rate) * s < 3000


@settings(max_examples=150, deadline=None)
@given(
    lam=rates,
    s=service_times,
    c=st.integers(1, 400),
    scv=scvs,
    q=quantiles,
    t=st.floats(0.0, 600.0),
)
def test_more_workers_never_increase_any_wait_metric(lam, s, c, scv, q, t):
    mu = 1 / s
    assume(_load_ok(lam, s))
    kw = {"service_scv": scv}
    for f in (
        lambda n: wait_probability(lam, mu, n),
        lambda n: mean_wait_s(lam, mu, n, **kw),
        lambda n: mean_queue_length(lam, mu, n, **kw),
        lambda n: prob_wait_exceeds(lam, mu, n, t, **kw),
        lambda n: wait_quantile_s(lam, mu, n, q, **kw),
    ):
        here, more = f(c), f(c + 1)
        assert not math.isnan(here) and not math.isnan(more)
        assert more <= here * (1 + 1e-12)


@settings(max_examples=150, deadline=None)
@given(lam=rates, s=service_times, terms=slo_terms(), scv=scvs)
def test_sized_workers_meet_the_slo_and_one_fewer_does_not(lam, s, terms, scv):
    assume(_load_ok(lam, s, terms))
    r = required_workers(lam, s, terms, service_scv=scv)
    assert r.feasible
    assert failing_terms(lam, s, r.workers, terms, service_scv=scv) == []
    assert r.workers >= 1
    missed = failing_terms(lam, s, r.workers - 1, terms, service_scv=scv)
    assert missed and r.binding_term == missed[0]
    assert r.utilization < 1


@settings(max_examples=120, deadline=None)
@given(
    lam=rates,
    s=service_times,
    terms=slo_terms(),
    scv=scvs,
    shrink=st.floats(0.05, 1.0),
    backlog_factor=st.floats(1.0, 10.0),
)
def test_a_stricter_slo_never_needs_fewer_workers(lam, s, terms, scv, shrink, backlog_factor):
    assume(
        _load_ok(
            lam * 1.3,
            s,
            replace(terms, current_backlog=terms.current_backlog * backlog_factor / shrink),
        )
    )
    strict = replace(
        terms,
        wait_s=None if terms.wait_s is None else terms.wait_s * shrink,
        wait_quantile=min(0.9999, 1 - (1 - terms.wait_quantile) * shrink),
        mean_wait_s=None if terms.mean_wait_s is None else terms.mean_wait_s * shrink,
        max_backlog=None if terms.max_backlog is None else terms.max_backlog * shrink,
        drain_s=None if terms.drain_s is None else terms.drain_s * shrink,
        max_utilization=None if terms.max_utilization is None else terms.max_utilization * shrink,
        current_backlog=terms.current_backlog * backlog_factor,
    )
    loose_n = required_workers(lam, s, terms, service_scv=scv).workers
    strict_n = required_workers(lam, s, strict, service_scv=scv).workers
    assert strict_n >= loose_n
    # and more demand never needs fewer workers
    assert required_workers(lam * 1.3, s, terms, service_scv=scv).workers >= loose_n


def test_wait_quantile_term_sizing_matches_hand_search():
    # 10 jobs/s of 2-s jobs (A = 20 Erlangs); 95 % of jobs must wait <= 5 s
    terms = SloTerms(wait_s=5.0, wait_quantile=0.95)
    r = required_workers(10.0, 2.0, terms)
    by_hand = next(c for c in range(21, 100) if wait_quantile_s(10.0, 0.5, c, 0.95) <= 5.0)
    assert r.workers == by_hand
    assert r.binding_term == "wait_quantile"
    assert r.wait_quantile_s <= 5.0 < wait_quantile_s(10.0, 0.5, r.workers - 1, 0.95)
    assert r.wait_probability == pytest.approx(erlang_c(r.workers, 20.0), rel=1e-15)


def test_each_term_can_bind():
    lam, s = 10.0, 1.0  # A = 10 Erlangs
    # utilisation <= 0.5 → c >= 20
    assert required_workers(lam, s, SloTerms(None, max_utilization=0.5)).workers == 20
    r = required_workers(lam, s, SloTerms(None, max_utilization=0.5))
    assert r.binding_term == "max_utilization"
    # drain 600 jobs within 60 s at the surplus rate c − 10 jobs/s → c >= 20
    r = required_workers(lam, s, SloTerms(None, drain_s=60, current_backlog=600))
    assert (r.workers, r.binding_term) == (20, "drain")
    # stability alone: least c > A
    r = required_workers(lam, s, SloTerms(None, max_backlog=1e9))
    assert (r.workers, r.binding_term) == (11, "stability")
    # mean wait <= 0.1 s
    r = required_workers(lam, s, SloTerms(None, mean_wait_s=0.1))
    assert mean_wait_s(lam, 1.0, r.workers) <= 0.1 < mean_wait_s(lam, 1.0, r.workers - 1)
    assert r.binding_term == "mean_wait"
    # expected backlog <= 0.5 jobs
    r = required_workers(lam, s, SloTerms(None, max_backlog=0.5))
    assert (
        mean_queue_length(lam, 1.0, r.workers) <= 0.5 < mean_queue_length(lam, 1.0, r.workers - 1)
    )


def test_allen_cunneen_variability_needs_more_workers():
    terms = SloTerms(wait_s=2.0, wait_quantile=0.95)
    smooth = required_workers(50.0, 1.0, terms, service_scv=0.2).workers
    expo = required_workers(50.0, 1.0, terms).workers
    bursty = required_workers(50.0, 1.0, terms, service_scv=4.0, arrival_scv=2.0).workers
    assert smooth <= expo <= bursty and smooth < bursty


def test_thousands_of_workers_size_quickly_and_exactly():
    terms = SloTerms(wait_s=0.5, wait_quantile=0.99)
    t0 = time.perf_counter()
    r = required_workers(8000.0, 1.0, terms)
    elapsed = time.perf_counter() - t0
    assert elapsed < 1.0
    assert wait_quantile_s(8000.0, 1.0, r.workers, 0.99) <= 0.5
    assert wait_quantile_s(8000.0, 1.0, r.workers - 1, 0.99) > 0.5
    assert 8000 < r.workers < 8200


def test_no_arrivals_need_no_workers_unless_backlog_must_drain():
    assert required_workers(0.0, 1.0, SloTerms(wait_s=1.0)).workers == 0
    r = required_workers(0.0, 2.0, SloTerms(wait_s=1.0, drain_s=100, current_backlog=250))
    assert r.workers == 5  # 5 workers × 0.5 jobs/s × 100 s = 250 jobs


def test_search_limit_reports_infeasible_instead_of_looping():
    r = required_workers(1000.0, 1.0, SloTerms(wait_s=1.0), max_workers=500)
    assert (r.feasible, r.workers, r.binding_term) == (False, 500, "stability")
    assert r.mean_wait_s == math.inf


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"wait_s": -1.0}, "SloTerms.wait_s"),
        ({"wait_s": 1.0, "wait_quantile": 1.0}, "SloTerms.wait_quantile"),
        ({"wait_s": None, "max_utilization": 1.5}, "SloTerms.max_utilization"),
        ({"wait_s": None, "current_backlog": -3}, "SloTerms.current_backlog"),
    ],
)
def test_bad_slo_terms_name_the_field(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        SloTerms(**kwargs)


def test_bad_sizing_inputs_name_the_argument():
    with pytest.raises(ValueError, match="mean_service_s"):
        required_workers(1.0, 0.0, SloTerms(wait_s=1.0))
    with pytest.raises(ValueError, match="arrival_rate_per_s"):
        required_workers(float("nan"), 1.0, SloTerms(wait_s=1.0))
