"""A Prefect progress artifact fed by a core progress callback (``run_backtest(progress=...)``).

Updates are throttled to one per ``step_percent`` so a replay of thousands of windows makes a
few dozen API calls, not thousands; reaching 100 % is always sent.
"""

from __future__ import annotations

from typing import cast
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact


class ProgressArtifact:
    """``progress(label, share_done)`` → the artifact's percentage (0–100)."""

    def __init__(self, key: str, description: str, step_percent: float = 2.0) -> None:
        # sync even when called from an async flow's code: the UUID itself, not a coroutine
        self.artifact_id = cast(
            UUID,
            create_progress_artifact(  # type: ignore[call-arg]
                0.0, key=key, description=description, _sync=True
            ),
        )
        self.step_percent = step_percent
        self.percent = 0.0
        self.updates = 0
        self._description = description

    def __call__(self, label: str, share_done: float) -> None:
        percent = round(100.0 * min(max(float(share_done), 0.0), 1.0), 1)
        if percent < 100.0 and percent - self.percent < self.step_percent:
            return
        if percent <= self.percent:
            return
        update_progress_artifact(  # type: ignore[call-arg]
            self.artifact_id,
            percent,
            description=f"{self._description} ({label})",
            _sync=True,
        )
        self.percent = percent
        self.updates += 1
