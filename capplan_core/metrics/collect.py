"""One collection cycle: poll every source, turn snapshots into ``queue_metrics`` rows.

Failures are isolated: a source that raises fails only its own queues, a queue the source
could not read fails only itself, and both are reported in :class:`CollectResult.errors`.
Rows carry ``recorded_at`` truncated to the collection interval, so a re-run of the same
cycle yields the same (queue_name, recorded_at) key and the store's upsert keeps one row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from capplan_core.metrics.rates import MetricsRow, snapshots_to_metrics
from capplan_core.metrics.snapshot import MetricsSource, QueueSnapshot, ensure_utc
from capplan_core.metrics.snapshot_store import MemorySnapshots, SnapshotStore

StoreWriter = Callable[[list[dict[str, Any]]], Any]


@dataclass(frozen=True)
class CollectError:
    """Why one queue (or a whole source, ``queue=None`` when unknown) gave no row."""

    source: str
    queue: str | None
    error: str


@dataclass(frozen=True)
class CollectResult:
    """Rows for ``queue_metrics`` (``to_store`` dicts), the snapshots, and the errors."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[MetricsRow] = field(default_factory=list)
    snapshots: list[QueueSnapshot] = field(default_factory=list)
    errors: list[CollectError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def truncate_time(ts: datetime, interval_s: float) -> datetime:
    """``ts`` floored to a multiple of ``interval_s`` since the epoch (UTC)."""
    if interval_s <= 0:
        raise ValueError(f"interval_s must be > 0 (got {interval_s!r})")
    epoch = ensure_utc(ts).timestamp()
    return datetime.fromtimestamp(epoch - epoch % interval_s, tz=UTC)


def _poll(source: MetricsSource, now: datetime) -> tuple[list[QueueSnapshot], list[CollectError]]:
    name = getattr(source, "name", type(source).__name__)
    try:
        snaps = source.poll(now)
    except Exception as err:  # noqa: BLE001 - one source never stops the others
        queues = list(getattr(source, "queues", []) or [None])
        msg = f"{type(err).__name__}: {err}"
        return [], [CollectError(name, q, msg) for q in queues]
    errors = [CollectError(name, s.queue, s.error) for s in snaps if s.error is not None]
    return [s for s in snaps if s.error is None], errors


def collect_once(
    sources: Sequence[MetricsSource],
    store_writer: StoreWriter | None,
    now: datetime,
    *,
    previous: SnapshotStore | None = None,
    interval_s: float = 60.0,
) -> CollectResult:
    """Poll every source once and return (and write) one metrics row per queue.

    Args:
        sources: metric sources; each reports its own queues.
        store_writer: called once with the row dicts (``queue_name``, ``recorded_at``,
            ``arrival_rate``, ``service_rate``, ``backlog``, ``workers``, ``extra``) when there
            are rows; None to only return them. A writer failure propagates (so the caller's
            retry repeats the cycle) and the previous snapshots are then left unchanged.
        now: cycle time (UTC).
        previous: where the previous snapshots live (Redis cache in production); without it
            the first cycle has no rates.
        interval_s: collection interval; rows' ``recorded_at`` is ``now`` floored to it.
    """
    now = ensure_utc(now)
    prev_store: SnapshotStore = previous if previous is not None else MemorySnapshots()
    slot = truncate_time(now, interval_s)
    result = CollectResult()
    prev = _previous(sources, prev_store, result)
    seen: set[str] = set()
    for source in sources:
        seed = getattr(source, "seed", None)
        if callable(seed):  # lets a fresh source read only what is new since the last cycle
            seed(prev)
        snaps, errors = _poll(source, now)
        result.errors.extend(errors)
        for snap in snaps:
            if snap.queue in seen:
                result.errors.append(
                    CollectError(
                        snap.source,
                        snap.queue,
                        "queue reported by more than one source; kept the first",
                    )
                )
                continue
            seen.add(snap.queue)
            try:
                row = snapshots_to_metrics(prev.get(snap.queue), snap)
            except Exception as err:  # noqa: BLE001 - e.g. an unreadable cached snapshot
                result.errors.append(CollectError(snap.source, snap.queue, f"rates: {err}"))
                row = snapshots_to_metrics(None, snap)
            result.snapshots.append(snap)
            result.metrics.append(replace(row, recorded_at=slot))
    result.rows.extend(m.to_store() for m in result.metrics)
    if store_writer is not None and result.rows:
        store_writer(result.rows)
    try:
        put_many = getattr(prev_store, "put_many", None)
        if callable(put_many):
            put_many(result.snapshots)
        else:
            for snap in result.snapshots:
                prev_store.put(snap)
    except Exception as err:  # noqa: BLE001 - a cache outage must not lose the rows
        result.errors.append(CollectError("cache", None, f"cannot store snapshots: {err}"))
    return result


def _previous(
    sources: Sequence[MetricsSource], store: SnapshotStore, result: CollectResult
) -> dict[str, QueueSnapshot]:
    queues = [q for s in sources for q in getattr(s, "queues", [])]
    try:
        return store.get_many(queues)
    except Exception as err:  # noqa: BLE001 - no previous snapshots: this cycle has no rates
        result.errors.append(CollectError("cache", None, f"cannot read snapshots: {err}"))
        return {}
