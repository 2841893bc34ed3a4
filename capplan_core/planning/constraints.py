"""How a planning constraint reads in reasons and tables: ``max -2``, ``cooldown +120 s``."""

from __future__ import annotations

from typing import Any


def constraint_text(c: dict[str, Any]) -> str:
    """``{"constraint": "max", "change": -2, "unit": "workers"}`` → ``"max -2"``; seconds get
    an ``s``."""
    unit = " s" if c.get("unit") == "s" else ""
    change = c["change"]
    num = f"{change:+.0f}" if isinstance(change, float) else f"{change:+d}"
    return f"{c['constraint']} {num}{unit}"
