"""Redis streams consumed by a consumer group (Redis >= 7.0).

Per stream, pipelined: ``XINFO STREAM`` (``entries-added``: cumulative arrivals), ``XINFO
GROUPS`` (``entries-read``: delivered to the group, ``pending``: delivered and not acked,
``lag``: not yet delivered) and ``XINFO CONSUMERS`` (each consumer's ``idle`` ms).

* arrivals = Δ entries-added; completions = Δ (entries-read − pending), i.e. acknowledged;
* backlog = lag; in progress = pending; workers = consumers idle less than ``consumer_idle_s``
  (a consumer blocked in XREADGROUP is not idle);
* streams keep no per-job timings, so the mean service time comes from Little's law and the
  mean wait from ``backlog / arrival rate``; there are no wait percentiles.

``lag`` and ``entries-read`` are unknown to Redis after some XDEL/XTRIM/XGROUP SETID cases;
then backlog or completions are None, never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from redis import Redis
from redis.exceptions import ResponseError

from capplan_core.metrics.snapshot import QueueSnapshot, ensure_utc, failed_snapshot


def _field(d: Mapping[Any, Any], name: str) -> Any:
    return d.get(name, d.get(name.encode()))


def _text(x: Any) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


class StreamSource:
    """Metrics of Redis streams with a consumer group.

    Args:
        redis: connection.
        queues: stream keys.
        group: consumer group name; None means "the stream's only group" (an error when a
            stream has several).
        consumer_idle_s: consumers idle longer than this are not counted as workers.
    """

    name = "stream"

    def __init__(
        self,
        redis: Redis,
        queues: Sequence[str],
        *,
        group: str | None = None,
        consumer_idle_s: float = 60.0,
    ) -> None:
        self.redis = redis
        self.queues = list(queues)
        self.group = group
        self.consumer_idle_s = consumer_idle_s

    def poll(self, now: datetime) -> list[QueueSnapshot]:
        """One snapshot per stream (two pipelined round trips for all streams together)."""
        now = ensure_utc(now)
        p = self.redis.pipeline(transaction=False)
        for q in self.queues:
            p.xinfo_stream(q)
            p.xinfo_groups(q)
        first = p.execute(raise_on_error=False)
        groups: list[dict[Any, Any] | str] = []
        p = self.redis.pipeline(transaction=False)
        for i, q in enumerate(self.queues):
            g = self._pick_group(q, first[2 * i], first[2 * i + 1])
            groups.append(g)
            if isinstance(g, dict):
                p.xinfo_consumers(q, _text(_field(g, "name")))
        second = iter(
            p.execute(raise_on_error=False) if any(isinstance(g, dict) for g in groups) else []
        )
        out = []
        for i, q in enumerate(self.queues):
            g = groups[i]
            if isinstance(g, str):
                missing = g.startswith("missing:")
                out.append(
                    QueueSnapshot(queue=q, recorded_at=now, source=self.name, exists=False)
                    if missing
                    else failed_snapshot(q, now, self.name, g)
                )
                continue
            consumers = next(second)
            out.append(self._snapshot(q, now, first[2 * i], g, consumers))
        return out

    def _pick_group(self, q: str, info: Any, groups: Any) -> dict[Any, Any] | str:
        """The group to read, or a reason string (``missing:`` prefix: no such stream)."""
        if isinstance(info, ResponseError):
            return f"missing:{info}" if "no such key" in str(info).lower() else str(info)
        if isinstance(groups, Exception):
            return f"{type(groups).__name__}: {groups}"
        names = [_text(_field(g, "name")) for g in groups]
        if self.group is not None:
            for g, n in zip(groups, names, strict=True):
                if n == self.group:
                    return dict(g)
            return f"stream {q!r} has no consumer group {self.group!r} (groups: {names})"
        if len(groups) == 1:
            return dict(groups[0])
        return (
            f"stream {q!r} has {len(groups)} consumer groups {names}; "
            "name one (stream_group / --group)"
        )

    def _snapshot(
        self, q: str, now: datetime, info: Mapping[Any, Any], g: Mapping[Any, Any], consumers: Any
    ) -> QueueSnapshot:
        if isinstance(consumers, Exception):
            return failed_snapshot(q, now, self.name, f"XINFO CONSUMERS: {consumers}")
        added = _field(info, "entries-added")
        read = _field(g, "entries-read")
        pending = float(_field(g, "pending") or 0)
        lag = _field(g, "lag")
        live = sum(
            1 for c in consumers if float(_field(c, "idle") or 0) / 1000.0 < self.consumer_idle_s
        )
        notes = ["streams keep no per-job timings: service time by Little's law, no wait p95"]
        if lag is None:
            notes.append("Redis cannot compute the group's lag (deletions): backlog unknown")
        return QueueSnapshot(
            queue=q,
            recorded_at=now,
            source=self.name,
            backlog=None if lag is None else float(lag),
            in_progress=pending,
            workers=float(live),
            enqueued_total=None if added is None else float(added),
            completed_total=None if read is None else float(read) - pending,
            notes=tuple(notes),
        )
