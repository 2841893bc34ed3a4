"""Learn from the last hour: correct the forecast's level when recent demand runs off it.

A seasonal model trusts its profile: after a level shift (the first weekday morning after a
weekend, a launch, an outage elsewhere) it adapts only as fast as its smoothing allows, and a
plan re-made every 30 minutes keeps under-provisioning for hours. Nowcasting from recent
errors (Hyndman & Athanasopoulos, *FPP3* §13.8 on forecast combination with recent errors;
the "level correction" of operational demand forecasters) fixes the next plan at once:

1. Re-run the chosen model (same parameters) on the history up to ``k`` steps ago (``k``
   steps = the last half hour, at least one) and forecast those ``k`` steps and the future
   horizon from there: ``P`` is its mean over them, ``Q_old[j]`` its forecast of window ``j``.
2. ``A`` is the mean demand that really came in those steps (raw, anomalies included: a step
   that happened is the news; the newest half hour, so a re-plan 30 minutes after a step
   already sees only the new level), and ``P`` is taken over the same steps: a step without
   a measurement counts on neither side. When ``|A - P|`` exceeds one one-step error ``s1`` (so
   noise is not chased) the ratio is ``r = A / P``, kept in [0.2, 5]; otherwise nothing moves.
3. The current forecast ``Q_new[j]`` moves towards ``r · Q_old[j]`` — what the old forecast
   would have said had it known the last hour's level — with weight
   ``w_j = 2^(-max(0, t_j - 1 h)/T½)`` (``t_j`` from the data's end to the start of window
   ``j``, ``T½`` the half-life; the next hour gets all of it): corrected =
   ``Q_new · (r · Q_old / Q_new)^w``. When the model has already adapted, ``r · Q_old ≈ Q_new``
   and nothing changes; far ahead the seasonal profile takes over again.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from capplan_core.forecast.models import ForecastModel

RATIO_LIMITS = (0.2, 5.0)
RECENT_S = 1800.0  # how far back "the demand that just came" reaches
FULL_S = 3600.0  # windows starting within this get the full correction (two re-plans)
QUIET_SHARE = 0.2  # no correction from a half hour expected below 20 % of the horizon's mean


@dataclass(frozen=True)
class Nowcast:
    """Per-window multipliers for the forecast (1 = unchanged) and what they came from."""

    factors: np.ndarray
    ratio: float  # r (1.0: no correction)
    actual_per_s: float  # A
    expected_per_s: float  # P


def nowcast_factors(
    model: ForecastModel,
    y_fit: np.ndarray,
    y_raw: np.ndarray,
    *,
    recent_steps: int,
    offset: int,
    n_out: int,
    step_s: float,
    half_life_s: float,
    one_step_scale: float,
) -> Nowcast | None:
    """Multipliers for the ``n_out`` forecast windows starting ``offset`` steps after the data.

    ``y_fit`` is the series the model was fitted on (jobs/s per step), ``y_raw`` the same steps
    as measured (NaN where missing). None when there is too little history, no recent data
    or nothing to correct (``half_life_s`` <= 0 disables it).
    """
    k = int(recent_steps)
    if half_life_s <= 0 or k < 1 or len(y_fit) < 4 * k or len(y_raw) != len(y_fit):
        return None
    recent = y_raw[-k:]
    if not np.isfinite(recent).any():
        return None
    try:
        prev = copy.deepcopy(model).refit(y_fit[:-k])
        f_prev = prev.forecast_mean(k + offset + n_out)
    except (ValueError, np.linalg.LinAlgError, FloatingPointError):
        return None
    # compare like with like: a window missing from the measurements (the newest one, not
    # yet complete or not yet reported) is left out of the forecast's side too; otherwise
    # the first window of a daily batch, missing, reads as "the last hour ran at 0.2x"
    seen = np.isfinite(recent)
    actual, expected = float(np.mean(recent[seen])), float(np.mean(f_prev[:k][seen]))
    if expected <= 0 or not np.isfinite(expected):
        return None
    q_new = model.forecast_mean(offset + n_out)[offset:]
    if expected < QUIET_SHARE * float(np.mean(q_new)):
        # the last half hour was a trough (a night before the morning ramp): its ratio says
        # nothing about the busy windows ahead, which come from the season (issue 22)
        return None
    if abs(actual - expected) <= max(one_step_scale, 0.0):
        return Nowcast(np.ones(n_out), 1.0, actual, expected)
    ratio = float(np.clip(actual / expected, *RATIO_LIMITS))
    if ratio == 1.0:
        return Nowcast(np.ones(n_out), 1.0, actual, expected)
    q_old = f_prev[k + offset : k + offset + n_out]
    lead_s = (offset + np.arange(n_out)) * step_s  # from the data's end to each window
    w = np.power(0.5, np.maximum(0.0, lead_s - FULL_S) / half_life_s)
    with np.errstate(divide="ignore", invalid="ignore"):
        toward = np.where((q_new > 0) & (q_old > 0), ratio * q_old / q_new, ratio)
    factors = np.clip(np.power(np.clip(toward, *RATIO_LIMITS), w), *RATIO_LIMITS)
    return Nowcast(np.asarray(factors, dtype=float), ratio, actual, expected)
