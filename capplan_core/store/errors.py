"""Store errors."""

from __future__ import annotations


class StoreError(RuntimeError):
    """A store operation was refused (unknown id, illegal transition)."""


class DecisionConflict(StoreError):
    """The plan was already decided (or is no longer awaiting a decision)."""
