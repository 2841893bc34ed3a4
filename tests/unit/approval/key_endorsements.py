"""Test helper: another approver's endorsement of a new key (four eyes on keys)."""

from __future__ import annotations

from typing import Any

from capplan_core.approval.key_trust import endorse, endorsement_statement


def endorsed(store: Any, name: str, public: str, *, private: str, by: str = "alice") -> str:
    """What ``by`` (holding ``private``, a key in force) prints with `capplan approvals
    endorse-key name public`."""
    st = endorsement_statement(
        store_id=store.store_id(), approver=name, public_key=public, endorser=by, now=store.now()
    )
    return endorse(private, st)
