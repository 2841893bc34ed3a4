"""docs/architecture.md's settings table lists every field of the typed settings (issue 26):
a setting added to :class:`capplan_app.settings.Settings` without a line there fails here."""

from __future__ import annotations

from pathlib import Path

from capplan_app.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def _settings_table() -> str:
    text = DOC.read_text()
    start = text.index("**Settings**")
    return text[start : text.index("\n## ", start)]


def test_every_setting_is_in_the_architecture_settings_table() -> None:
    table = _settings_table()
    missing = [
        f"CAPPLAN_{name.upper()}"
        for name in Settings.model_fields
        if f"`CAPPLAN_{name.upper()}`" not in table
    ]
    assert missing == [], f"docs/architecture.md's settings table lacks {missing}"


def test_the_table_names_no_setting_that_does_not_exist() -> None:
    import re

    named = set(re.findall(r"`CAPPLAN_([A-Z_]+)`", _settings_table()))
    known = {name.upper() for name in Settings.model_fields}
    assert named <= known, f"documented but not settings: {sorted(named - known)}"
