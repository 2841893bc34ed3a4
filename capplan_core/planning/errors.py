"""Store errors."""

from __future__ import annotations


class StoreError(RuntimeError):
    """A store operation was refused (unknown id, illegal transition)."""


class DecisionConflict(StoreError):
    """The plan was already decided (or is no longer awaiting a decision)."""


class StalePlan(DecisionConflict):
    """Approval refused: a newer plan of the same queue exists (decide on that one)."""


class CapRefused(StoreError):
    """Approval refused: the approver's ``max_workers`` cap is not allowed for this plan."""


class SchemaBehind(StoreError):
    """The database schema is older than the code and migrating at start is switched off."""
