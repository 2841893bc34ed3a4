"""The alert rules pass ``promtool check rules`` and their unit tests (``promtool test rules``).

promtool comes with Debian's prometheus package (``bin/services`` installs it); without it
these tests fail, saying why.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.service_helpers import binary

pytestmark = pytest.mark.integration

RULES_DIR = Path(__file__).resolve().parents[3] / "deployments" / "prometheus"


def promtool(*args: str, cwd: Path = RULES_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_promtool_checks_the_alert_rules() -> None:
    r = promtool("check", "rules", "capplan-alerts.yml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 6 rules found" in r.stdout


def test_promtool_unit_tests_of_the_alert_rules_pass() -> None:
    r = promtool("test", "rules", "capplan-alerts.test.yml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


def test_promtool_rule_tests_fail_when_a_threshold_changes(tmp_path: Path) -> None:
    """The rule tests can fail: doubling the stale threshold breaks the stale-cycle case."""
    for name in ("capplan-alerts.yml", "capplan-alerts.test.yml"):
        shutil.copy(RULES_DIR / name, tmp_path / name)
    rules = tmp_path / "capplan-alerts.yml"
    text = rules.read_text()
    assert "capplan_cycle_last_success_timestamp_seconds > 3600" in text
    rules.write_text(
        text.replace(
            "capplan_cycle_last_success_timestamp_seconds > 3600",
            "capplan_cycle_last_success_timestamp_seconds > 7200",
        )
    )
    r = promtool("test", "rules", "capplan-alerts.test.yml", cwd=tmp_path)
    assert r.returncode != 0
    assert "CapplanCycleStale" in r.stdout + r.stderr
