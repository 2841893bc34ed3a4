"""The demos' own store: never the one a user then runs capplan for real.

``capplan demo`` applies the bundled policies and stores plans; ``capplan demo --live`` adds a
policy and four days of history per run. Both write into a SQLite file of their own under
``<data dir>/demo/`` (``CAPPLAN_DATA_DIR``), whatever ``CAPPLAN_DATABASE_URL`` says, and the
replay demo scales only the dry-run scaler whatever ``CAPPLAN_SCALER`` says. The live demo's
store starts empty each run: each run's policy scales a supervisord group named ``rqw`` of its
own, and a store holding an earlier run's policy would refuse a second policy for that target.
Emptying it also drops its restore-watch mark (a new store's first rows are not a restore).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from capplan_app.settings import get_settings, settings_environment


def demo_store_path(name: str) -> Path:
    """``<data dir>/demo/<name>.db`` (the directory is created)."""
    folder = get_settings().data_dir / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.db"


@contextmanager
def demo_settings(name: str, *, fresh: bool = False, **overrides: str) -> Iterator[str]:
    """Point this process's capplan settings at the demo store ``name`` (plus ``overrides``,
    ``CAPPLAN_*`` variables without the prefix, e.g. ``SCALER="dry-run"``) and yield its URL;
    the previous environment is restored afterwards. ``fresh``: delete the store first."""
    path = demo_store_path(name)
    url = f"sqlite:///{path}"
    if fresh:
        from capplan_adapters.restore_watch import forget_store

        for stale in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm"))):
            stale.unlink(missing_ok=True)
        # a new store, not a restored one: its restore watch starts over
        forget_store(get_settings().data_dir, url)
    values = {
        "CAPPLAN_DATABASE_URL": url,
        **{f"CAPPLAN_{k.upper()}": v for k, v in overrides.items()},
    }
    with settings_environment(values):
        yield url


def browse_hint(url: str) -> str:
    """How to look at the demo's plans afterwards."""
    return f"CAPPLAN_DATABASE_URL={url} capplan plans list"
