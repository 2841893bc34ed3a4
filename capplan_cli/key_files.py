"""An approver's private key file (signed decisions and policy versions: docs/security.md).
The key stays on the approver's machine; the CLI reads it only to sign."""

from __future__ import annotations

from pathlib import Path

from capplan_cli.output import fail

DEFAULT_KEY_FILE = "~/.config/capplan/approver.key"


def read_private_key(key_file: str) -> str:
    """The approver's private key from ``--key-file`` (exit 2 naming the flag if unreadable)."""
    path = Path(key_file).expanduser()
    try:
        return path.read_text().strip()
    except OSError as err:
        fail(f"--key-file: cannot read {path}: {err.strerror}")
