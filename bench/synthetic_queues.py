"""Synthetic queues for the scale benchmark and tests: 7 days of 5-minute history each.

Each queue ``q0000``, ``q0001``, … has its own seeded shape: a base rate (0.5–12 jobs/s), a
daily season peaking at its own hour, multiplicative noise, a service rate (0.2–2 jobs/s per
worker) and a lagging reactive worker count, built with the demo generator's helpers
(``scripts/generate_demo_data.py``). Every queue is healthy, so every one must be planned.

Policies are the demo's ``thumbnails`` policy (auto) renamed per queue, with a daily season and
100 replications (a standard plan: 6 h horizon, 15-minute windows).
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from capplan_core.policy import ScalingPolicy, load_policies  # noqa: E402
from scripts.generate_demo_data import _daily, _queue_frame  # noqa: E402

END = pd.Timestamp("2026-11-20T12:00:00Z")
DAYS = 7
STEP_MIN = 5
SEED = 14


def queue_name(i: int) -> str:
    return f"q{i:04d}"


def queue_rows(
    i: int, *, end: pd.Timestamp = END, days: int = DAYS, seed: int = SEED
) -> pd.DataFrame:
    """One queue's rows (metrics-file columns), 5-minute intervals ending at ``end``."""
    rng = np.random.default_rng([seed, i])
    ts = pd.date_range(
        end=end,
        periods=days * 24 * 60 // STEP_MIN,
        freq=f"{STEP_MIN}min",
        inclusive="left",
        tz="UTC",
    )
    base = rng.uniform(0.5, 12.0)
    peak = rng.uniform(0, 24)
    rate = base * _daily(ts, peak) * rng.lognormal(0, 0.08, len(ts))
    service_rate = float(rng.uniform(0.2, 2.0))
    scv = float(rng.uniform(0.5, 1.5))
    frame = _queue_frame(queue_name(i), ts, rate, service_rate=service_rate, scv=scv, rng=rng)
    # the demo's backlog model integrates per minute; rescale to 5-minute steps
    frame["backlog"] = np.round(frame["backlog"] * STEP_MIN)
    return frame


def metrics_frame(n: int, **kw: object) -> pd.DataFrame:
    return pd.concat(
        [queue_rows(i, **kw) for i in range(n)],  # type: ignore[arg-type]
        ignore_index=True,
    )


def write_metrics(path: Path, n: int, *, end: datetime | None = None) -> Path:
    """All ``n`` queues in one metrics file (Parquet), as ``capplan plan --metrics`` reads;
    with ``end``, shifted to end then (``capplan plan --save`` plans at the wall clock)."""
    frame = metrics_frame(n)
    if end is not None:
        from capplan_core.metrics.transfer import shifted_to_end

        frame = shifted_to_end(frame, end)
    frame.to_parquet(path, index=False)
    return path


def policy(i: int, *, mode: str = "auto", replications: int = 100) -> ScalingPolicy:
    demo = {p.name: p for p in load_policies(ROOT / "data/demo/policies.yaml")}["thumbnails"]
    doc = demo.model_dump(mode="json")
    doc.update(name=queue_name(i), queue=queue_name(i), mode=mode)
    doc["target"] = {**doc["target"], "name": f"{queue_name(i)}-worker"}
    doc["scaling"]["max_workers"] = 200
    doc["scaling"]["max_step"] = 40
    doc["forecast"]["seasonality"] = ["daily"]
    doc["simulation"]["replications"] = replications
    return ScalingPolicy.model_validate(doc)


def policies(n: int, **kw: object) -> list[ScalingPolicy]:
    return [policy(i, **kw) for i in range(n)]  # type: ignore[arg-type]


def write_policies(path: Path, n: int, **kw: object) -> Path:
    import yaml

    docs = [p.model_dump(mode="json") for p in policies(n, **kw)]
    path.write_text(yaml.safe_dump({"policies": docs}, sort_keys=False))
    return path
