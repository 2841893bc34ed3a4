"""Every integration test file carries the ``integration`` marker (issue 26), so
``-m "not integration"`` really selects the tests that need no service."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_integration_test_file_is_marked_integration() -> None:
    files = sorted((ROOT / "tests" / "integration").rglob("test_*.py"))
    assert len(files) > 30
    unmarked = [
        str(f.relative_to(ROOT)) for f in files if "pytest.mark.integration" not in f.read_text()
    ]
    assert unmarked == [], "add pytestmark = pytest.mark.integration to: " + ", ".join(unmarked)
