"""Benchmark: select, fit and forecast one queue from 4 weeks of 5-minute history.

    .venv/bin/python bench/bench_forecast.py [--series 12] [--baseline-sample 3] [--pool 0]
    .venv/bin/python bench/bench_forecast.py --taylor     (the real half-hourly series only)

Data: synthetic queue traffic (jobs/s) with a daily wave, weekday/weekend levels, a slow trend,
Poisson noise and a few bursts, 28 days of 5-minute history plus one held-out day; each series
gets its own seed, amplitude, weekend factor and phase. Accuracy is MASE on the held-out day
at the 15-minute planning interval (denominator: in-sample daily seasonal naive MAE).

Methods, all timed in this run:
  auto            capplan_core.forecast.forecast_queue(model="auto"), 15-minute planning series
  mstl_full       statsmodels MSTL (periods 1 day, 1 week) on the 5-minute series + damped ETS
                  on the seasonally adjusted series (the "MSTL + ETS" reference), averaged to 15 min
  snaive_weekly   the value one week earlier
  hw_daily        Holt-Winters additive damped, daily season, 15-minute series

Calibration of ``auto`` on the held-out day: coverage of the 80% and 90% central intervals and
the share of windows at or below the 0.9 quantile (what the planner sizes to), over all windows
and over each series' peak (top-quartile forecast level) and trough (bottom-quartile) windows.

1,000 queues: extrapolated from the per-queue mean of the sample (sequential, one core);
``--pool N`` instead runs 1,000 auto forecasts in a process pool of N workers and reports the
wall time.
"""

from __future__ import annotations

import argparse
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd

from capplan_core.forecast import ForecastResult, forecast_queue
from capplan_core.forecast.evaluation import mase_scale
from capplan_core.forecast.models import HoltWinters
from capplan_core.forecast.seasonal import MstlStatsmodels
from capplan_core.policy import ForecastSpec

DAYS = 28
STEP_5M = 288  # 5-minute steps per day
STEP_15M = 96
SPEC = ForecastSpec(
    model="auto", horizon_hours=24, interval_minutes=15, seasonality=["daily", "weekly"]
)


def make_series(seed: int) -> pd.Series:
    rng = np.random.default_rng(seed)
    n = (DAYS + 1) * STEP_5M
    t = np.arange(n)
    hod, dow = (t % STEP_5M) / STEP_5M, (t // STEP_5M) % 7
    base = rng.uniform(5, 50)
    amp, weekend, phase = rng.uniform(0.4, 0.9), rng.uniform(0.3, 0.9), rng.uniform(0.2, 0.4)
    lam = base * (1 + amp * np.sin(2 * np.pi * (hod - phase))) * np.where(dow >= 5, weekend, 1)
    lam *= 1 + rng.uniform(-0.1, 0.2) * t / n  # slow growth or decline
    for start in rng.integers(0, DAYS * STEP_5M, size=3):  # short bursts
        lam[start : start + 6] *= rng.uniform(2, 4)
    y = rng.poisson(lam * 300) / 300
    idx = pd.date_range("2026-01-05", periods=n, freq="5min", tz="UTC")
    return pd.Series(y, index=idx, name="arrival_rate")


def split(s: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    train = s.iloc[: DAYS * STEP_5M]
    test = s.iloc[DAYS * STEP_5M :].resample("15min").mean().to_numpy()
    train15 = train.resample("15min").mean().to_numpy()
    return train, train15, test


def _mase(fc: np.ndarray, test: np.ndarray, train15: np.ndarray) -> float:
    return float(np.mean(np.abs(fc - test)) / mase_scale(train15, STEP_15M))


BUCKETS = ("all", "peak", "trough")
COVER = ("80%", "90%", "<=q0.9")


def _hits(res: ForecastResult, test: np.ndarray) -> dict[str, np.ndarray]:
    """Per bucket: windows and hits of the 80%/90% intervals and of the 0.9 quantile."""
    q = {p: res.quantile(p) for p in (0.05, 0.1, 0.9, 0.95)}
    inside = np.stack(
        [(test >= q[0.1]) & (test <= q[0.9]), (test >= q[0.05]) & (test <= q[0.95]), test <= q[0.9]]
    )
    lo, hi = np.quantile(res.mean, [0.25, 0.75])
    masks = {"all": res.mean >= 0, "peak": res.mean >= hi, "trough": res.mean <= lo}
    return {b: np.concatenate([[m.sum()], inside[:, m].sum(axis=1)]) for b, m in masks.items()}


def run_auto(seed: int) -> tuple[float, float, str, dict[str, np.ndarray], float]:
    train, train15, test = split(make_series(seed))
    t0, c0 = time.perf_counter(), time.process_time()
    res = forecast_queue(train, SPEC, queue=f"q{seed}")
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    return dt, _mase(res.mean, test, train15), res.model, _hits(res, test), cpu


def run_mstl_full(seed: int) -> tuple[float, float]:
    train, train15, test = split(make_series(seed))
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MstlStatsmodels(STEP_5M, 7 * STEP_5M).fit(train.to_numpy())
    fc5 = model.forecast_mean(STEP_5M)
    dt = time.perf_counter() - t0
    return dt, _mase(fc5.reshape(-1, 3).mean(axis=1), test, train15)


def run_simple(seed: int) -> dict[str, tuple[float, float]]:
    _, train15, test = split(make_series(seed))
    t0 = time.perf_counter()
    fc = train15[-7 * STEP_15M :][:STEP_15M]
    out = {"snaive_weekly": (time.perf_counter() - t0, _mase(fc, test, train15))}
    t0 = time.perf_counter()
    hw = HoltWinters(STEP_15M).fit(train15)
    out["hw_daily"] = (time.perf_counter() - t0, _mase(hw.forecast_mean(STEP_15M), test, train15))
    return out


def run_taylor(origins_per_day: int = 4, weeks: int = 4, horizon_h: float = 6.0) -> None:
    """Real half-hourly demand (Taylor 2000, pmdarima): rolling origins over the last weeks.

    MAE of ``auto`` (with and without nowcasting) against the weekly seasonal naive method
    (the value one week earlier) over the planner's 6-hour horizon, and the coverage of the
    80 % / 95 % intervals and of the 0.99 quantile (what ``target_attainment: 0.99`` sizes
    to) over all windows, the peak quartile (actual demand in the top quartile of the last
    weeks) and the weekday/weekend switch days (Mondays, Saturdays), for the pooled
    calibration (the default) and ``interval_calibration: regime``."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench.real_series import taylor_rows

    rows = taylor_rows()
    y = pd.Series(rows["arrival_rate"].to_numpy(), index=pd.DatetimeIndex(rows["timestamp"]))
    h = int(horizon_h * 2)
    week = 336
    first = len(y) - weeks * week
    step = 48 // origins_per_day
    specs = {
        (hl, cal): ForecastSpec(
            model="auto",
            horizon_hours=horizon_h,
            interval_minutes=30,
            seasonality=["daily", "weekly"],
            nowcast_half_life_hours=hl,
            interval_calibration=cal,
        )
        for hl, cal in ((3.0, "pooled"), (0.0, "pooled"), (3.0, "regime"))
    }
    err: dict[str, list[np.ndarray]] = {"auto": [], "auto (no nowcast)": [], "snaive_weekly": []}
    hits: dict[str, dict[str, list[np.ndarray]]] = {
        cal: {k: [] for k in ("80", "95", "q99")} for cal in ("pooled", "regime")
    }
    peak, switch = [], []
    chosen: list[str] = []
    top = np.quantile(y.to_numpy()[first:], 0.75)
    t0 = time.perf_counter()
    for o in range(first, len(y) - h + 1, step):
        test = y.to_numpy()[o : o + h]
        fc = {k: forecast_queue(y.iloc[:o], sp, queue="taylor") for k, sp in specs.items()}
        err["auto"].append(np.abs(fc[(3.0, "pooled")].mean - test))
        err["auto (no nowcast)"].append(np.abs(fc[(0.0, "pooled")].mean - test))
        err["snaive_weekly"].append(np.abs(y.to_numpy()[o - week : o - week + h] - test))
        chosen.append(fc[(3.0, "pooled")].model)
        for cal in ("pooled", "regime"):
            r = fc[(3.0, cal)]
            for lv in ("80", "95"):
                lo, hi = r.bounds[int(lv) / 100]
                hits[cal][lv].append((test >= lo) & (test <= hi))
            hits[cal]["q99"].append(test <= r.quantile(0.99))
        peak.append(test >= top)
        days = y.index[o : o + h].dayofweek
        switch.append((days == 0) | (days == 5))
    n = len(err["auto"])
    base = float(np.mean(err["snaive_weekly"]))
    print(
        f"taylor: {n} origins x {h} steps over the last {weeks} weeks "
        f"({time.perf_counter() - t0:.0f} s)"
    )
    for k, e in err.items():
        print(f"  {k:<20} MAE {np.mean(e):.3f} jobs/s  = {np.mean(e) / base:.3f}x weekly naive")
    print(f"  auto chose: {pd.Series(chosen).value_counts().to_dict()}")
    pk, sw = np.concatenate(peak), np.concatenate(switch)
    for cal, by_level in hits.items():
        for lv, hh in by_level.items():
            a = np.concatenate(hh)
            print(
                f"  {cal:<6} coverage {lv:>3}: all {a.mean():.3f}  peak quartile "
                f"{a[pk].mean():.3f}  Mondays+Saturdays {a[sw].mean():.3f}"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--taylor",
        action="store_true",
        help="only the real half-hourly series (Taylor 2000): accuracy, coverage",
    )
    ap.add_argument("--series", type=int, default=12, help="sample size for auto and baselines")
    ap.add_argument("--baseline-sample", type=int, default=3, help="series for mstl_full")
    ap.add_argument("--pool", type=int, default=0, help="run 1,000 queues in N processes")
    args = ap.parse_args()
    if args.taylor:
        run_taylor()
        return
    seeds = list(range(args.series))
    run_auto(10_000)  # warm up imports and caches
    auto = [run_auto(s) for s in seeds]
    simple = [run_simple(s) for s in seeds]
    full = [run_mstl_full(s) for s in seeds[: args.baseline_sample]]
    rows = {
        "auto (ours)": ([a[0] for a in auto], [a[1] for a in auto]),
        "mstl_full (MSTL+ETS)": ([f[0] for f in full], [f[1] for f in full]),
        "snaive_weekly": (
            [x["snaive_weekly"][0] for x in simple],
            [x["snaive_weekly"][1] for x in simple],
        ),
        "hw_daily": ([x["hw_daily"][0] for x in simple], [x["hw_daily"][1] for x in simple]),
    }
    print(f"{'method':<22}{'series':>7}{'MASE':>8}{'s/series':>10}{'1,000 queues (s)':>18}")
    for name, (times, mases) in rows.items():
        per = float(np.mean(times))
        print(f"{name:<22}{len(times):>7}{np.mean(mases):>8.3f}{per:>10.3f}{per * 1000:>18.0f}")
    same = seeds[: args.baseline_sample]
    a_t = np.mean([auto[i][0] for i in range(len(same))])
    a_m = np.mean([auto[i][1] for i in range(len(same))])
    f_t, f_m = np.mean([f[0] for f in full]), np.mean([f[1] for f in full])
    print(
        f"on the {len(same)} series both ran: auto MASE {a_m:.3f} vs mstl_full {f_m:.3f}; "
        f"auto is {f_t / a_t:.0f}x faster ({a_t:.3f} s vs {f_t:.2f} s)"
    )
    models = pd.Series([a[2] for a in auto]).value_counts().to_dict()
    print(f"auto chose: {models}")
    cpu = [a[4] for a in auto]
    print(
        f"auto CPU time (summed over the process's threads): {np.mean(cpu):.3f} s/series "
        f"(max {np.max(cpu):.3f})"
    )
    print(f"auto held-out coverage ({' / '.join(COVER)}):")
    for b in BUCKETS:
        tot = np.sum([a[3][b] for a in auto], axis=0)
        cov = " / ".join(f"{x / tot[0]:.3f}" for x in tot[1:])
        print(f"  {b:<7} {cov}  ({int(tot[0])} windows)")
    print("1,000 queues: extrapolated from the sequential per-queue mean (one core)")
    if args.pool:
        t0 = time.perf_counter()
        with ProcessPoolExecutor(args.pool) as ex:
            list(ex.map(run_auto, [i % max(args.series, 1) for i in range(1000)], chunksize=20))
        print(f"1,000 queues measured in a pool of {args.pool}: {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
