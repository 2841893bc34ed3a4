"""An approver who lives on this machine: the demo's, the soak's and the restore drill's.

A real approver keeps their private key on their own machine (``capplan approvals keygen``)
and registers only the public key (docs/security.md). The demo, the soak and the drill act as
their own approver, so they do the same in one place: a private key in a file beside their
store (made on first use, readable only by its owner), its public key registered once.
"""

from __future__ import annotations

import os
from pathlib import Path

from capplan_core.approval.signature import new_keypair, public_key_of
from capplan_core.planning.repository import PlanRepository


def local_approver_key(store: PlanRepository, approver: str, key_path: Path, *, actor: str) -> str:
    """``approver``'s private key, kept at ``key_path``, with its public key registered in
    ``store`` (the store's first key, or already there). Raises ``StoreError`` when the store
    holds other keys of theirs and will not take this one without an endorsement."""
    if key_path.exists():
        private = key_path.read_text().strip()
    else:
        private, _public = new_keypair()
        key_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(private + "\n")
    public = public_key_of(private)
    if public not in store.approver_public_keys(approver):
        store.add_approver_public_key(approver, public, actor=actor)
    return private
