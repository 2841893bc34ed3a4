"""Generate the bundled demo metrics (seeded, reproducible).

    .venv/bin/python scripts/generate_demo_data.py   # writes data/demo/metrics.csv.gz

Four queues, 14 days of per-minute rows ending 2026-11-20T12:00Z (a Friday, just before the
afternoon peak):
- ``emails``     daily + weekly seasonality, noise; a few bad rows (negative rate, NaN service
                 rate, duplicated timestamps) that the data-quality stage must catch and drop.
- ``thumbnails`` upward trend + daily season, one burst on day 10.
- ``reports``    low-rate, noisy, slow jobs, and one 3-hour gap in the data.
- ``legacy-sync`` stopped reporting two days before the end: fails the freshness expectation,
                 so it is skipped with the reason recorded while the others are planned.
- ``notify-push`` and ``notify-digest``: one pool of workers serving both, push first
                 (``rq worker notify-push notify-digest``; docs/shared-pools.md). Push: 1-s
                 jobs, an evening peak; digest: 3-s jobs, a morning batch. Both queues' rows
                 count the pool's workers (what RQ's worker registrations say).

The shared pool's queues are drawn after everything else, so the first four queues' rows are
the same as before they were added.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20261120
END = pd.Timestamp("2026-11-20T12:00:00Z")
DAYS = 14
OUT = Path(__file__).resolve().parent.parent / "data" / "demo" / "metrics.csv.gz"


def _daily(ts: pd.DatetimeIndex, peak_hour: float) -> np.ndarray:
    hours = ts.hour + ts.minute / 60.0
    return 1.0 + 0.6 * np.cos(2 * np.pi * (hours - peak_hour) / 24.0)


def _weekly(ts: pd.DatetimeIndex) -> np.ndarray:
    return np.where(ts.dayofweek >= 5, 0.55, 1.0)


def _fluid_backlog(arrival: np.ndarray, service_rate: float, workers: np.ndarray) -> np.ndarray:
    backlog = np.zeros_like(arrival)
    b = 0.0
    for i, (lam, w) in enumerate(zip(arrival, workers, strict=True)):
        b = max(0.0, b + (lam - service_rate * w) * 60.0)
        backlog[i] = b
    return np.round(backlog)


def _reactive_workers(arrival: np.ndarray, service_rate: float, headroom: float) -> np.ndarray:
    """What a lagging reactive autoscaler ran: sized to the rate 5 minutes ago."""
    lagged = np.concatenate([np.full(5, arrival[0]), arrival[:-5]])
    return np.maximum(1, np.ceil(lagged / service_rate * headroom))


def _queue_frame(
    name: str,
    ts: pd.DatetimeIndex,
    arrival: np.ndarray,
    service_rate: float,
    scv: float,
    rng: np.random.Generator,
    headroom: float = 1.15,
    *,
    pool: tuple[np.ndarray, np.ndarray] | None = None,
) -> pd.DataFrame:
    """One queue's rows; ``pool`` (its workers, the workers left to it) for a queue served
    by a shared pool, else the queue's own reactive pool."""
    arrival = np.maximum(arrival, 0.0)
    workers = _reactive_workers(arrival, service_rate, headroom)
    free = workers
    if pool is not None:
        workers, free = pool
    measured_mu = service_rate * rng.normal(1.0, 0.03, len(ts))
    mean_s = 1.0 / service_rate
    sigma = np.sqrt(np.log1p(scv))
    p95 = mean_s * np.exp(sigma * 1.6449 - sigma**2 / 2)
    return pd.DataFrame(
        {
            "timestamp": ts,
            "queue": name,
            "arrival_rate": np.round(arrival, 5),
            "service_rate": np.round(measured_mu, 5),
            "backlog": _fluid_backlog(arrival, service_rate, free),
            "workers": workers.astype(int),
            "service_time_p95": np.round(p95 * rng.normal(1.0, 0.05, len(ts)), 4),
            "service_time_scv": np.round(scv * rng.normal(1.0, 0.05, len(ts)), 4),
        }
    )


def generate(seed: int = SEED) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = pd.date_range(end=END, periods=DAYS * 24 * 60, freq="1min", inclusive="left", tz="UTC")
    n = len(ts)
    days_elapsed = np.arange(n) / (24 * 60)

    # emails: daily + weekly, multiplicative noise
    emails_rate = 8.0 * _daily(ts, 14.0) * _weekly(ts) * rng.lognormal(0, 0.08, n)
    emails = _queue_frame("emails", ts, emails_rate, service_rate=0.5, scv=1.0, rng=rng)

    # thumbnails: +40% trend over the period, daily season, a 40-minute 3x burst on day 10
    thumbs_rate = 3.0 * (1 + 0.4 * days_elapsed / DAYS) * _daily(ts, 19.0) * rng.normal(1, 0.06, n)
    burst = (days_elapsed >= 10.40) & (days_elapsed < 10.40 + 40 / 1440)
    thumbs_rate = np.where(burst, thumbs_rate * 3.0, thumbs_rate)
    thumbs = _queue_frame("thumbnails", ts, thumbs_rate, service_rate=1.0, scv=0.5, rng=rng)

    # reports: low rate, noisy (Poisson counts per minute), slow jobs; a 3-hour gap on day 7
    reports_rate = rng.poisson(0.06 * _daily(ts, 9.0) * 60) / 60.0
    reports = _queue_frame(
        "reports", ts, reports_rate, service_rate=1 / 30, scv=2.0, rng=rng, headroom=1.5
    )
    gap = (days_elapsed >= 7.25) & (days_elapsed < 7.25 + 3 / 24)
    reports = reports.loc[~gap]

    # legacy-sync: healthy shape but stopped reporting two days ago (stale)
    legacy_rate = 1.0 * _daily(ts, 3.0) * rng.normal(1, 0.05, n)
    legacy = _queue_frame("legacy-sync", ts, legacy_rate, service_rate=0.2, scv=1.0, rng=rng)
    legacy = legacy.loc[ts < END - pd.Timedelta(days=2)]

    # bad rows in emails: what a buggy exporter produces
    emails = emails.copy()
    bad_idx = rng.choice(np.arange(1000, n - 1000), size=3, replace=False)
    emails.loc[bad_idx, "arrival_rate"] = -1.0
    emails.loc[int(bad_idx[0]) + 7, "service_rate"] = np.nan
    dups = emails.iloc[[n - 200, n - 100]].copy()
    emails = pd.concat([emails, dups]).sort_values("timestamp", kind="stable")

    frame = pd.concat(
        [emails, thumbs, reports, legacy, *_notifications(ts, rng)], ignore_index=True
    )
    frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return frame


def _notifications(ts: pd.DatetimeIndex, rng: np.random.Generator) -> list[pd.DataFrame]:
    """The shared pool: push (1-s jobs, evening peak) first, digest (3-s jobs, a morning
    batch 05:00-08:00) after it. The pool ran reactively on their total work; push's
    backlog drains with the whole pool, digest's with what push leaves."""
    push_rate = 4.0 * _daily(ts, 19.0) * _weekly(ts) * rng.lognormal(0, 0.06, len(ts))
    hours = ts.hour + ts.minute / 60.0
    batch = np.where((hours >= 5) & (hours < 8), 3.0, 0.0)
    digest_rate = (0.3 + batch) * rng.lognormal(0, 0.08, len(ts))
    push_s, digest_s = 1.0, 3.0
    workers = _reactive_workers(push_rate * push_s + digest_rate * digest_s, 1.0, 1.15)
    left = np.maximum(0.0, workers - push_rate * push_s)
    return [
        _queue_frame("notify-push", ts, push_rate, 1 / push_s, 1.0, rng, pool=(workers, workers)),
        _queue_frame(
            "notify-digest", ts, digest_rate, 1 / digest_s, 1.0, rng, pool=(workers, left)
        ),
    ]


def main() -> None:
    frame = generate()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(OUT, index=False, compression={"method": "gzip", "mtime": 0})
    print(f"wrote {len(frame)} rows to {OUT}")


if __name__ == "__main__":
    main()
