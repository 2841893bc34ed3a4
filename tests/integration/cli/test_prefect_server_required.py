"""Commands that must reach the real Prefect server refuse a temporary one (issue 21, 6).

Without ``PREFECT_API_URL`` Prefect's client would start a throwaway server for the length of
the command: ``approvals add-key`` stored the key there and reported success. Now it exits 2,
says how to set ``PREFECT_API_URL``, and starts no server (so nothing is stored anywhere).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capplan_cli.main import app

pytestmark = pytest.mark.integration

CAPPLAN = str(Path(sys.executable).parent / "capplan")


def _without_prefect_api(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(
        {"PREFECT_HOME": str(tmp_path / "prefect-home"), "CAPPLAN_DATA_DIR": str(tmp_path), **extra}
    )
    env.pop("CAPPLAN_DATABASE_URL", None)
    return env


def test_add_key_refuses_a_temporary_prefect_server_and_stores_nothing(tmp_path: Path) -> None:
    res = subprocess.run(
        [CAPPLAN, "approvals", "add-key", "alice"],
        cwd=tmp_path,
        env=_without_prefect_api(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = " ".join((res.stdout + res.stderr).split())  # rich wraps the message
    assert res.returncode == 2, out
    assert "`capplan approvals add-key` must reach your Prefect server" in out
    assert "PREFECT_API_URL is not set" in out
    assert "export PREFECT_API_URL=http://127.0.0.1:4200/api" in out
    assert "stored a new key" not in out
    assert res.stdout.strip() == ""  # no key printed
    # no temporary server ran: it would have created its database in PREFECT_HOME
    assert not (tmp_path / "prefect-home" / "prefect.db").exists()


def test_plans_approve_refuses_a_temporary_prefect_server(tmp_path: Path) -> None:
    env = _without_prefect_api(
        tmp_path, CAPPLAN_DATABASE_URL=f"sqlite:///{tmp_path}/c.db", CAPPLAN_APPROVER_KEY="k" * 43
    )
    seed = (
        "from tests.integration.store.plan_seed import POLICY, emails_draft\n"
        "from capplan_app.bootstrap import plan_store\n"
        "s = plan_store(); s.apply_policies([POLICY], actor='t')\n"
        "print(s.create_plan(emails_draft()))\n"
    )
    repo = Path(__file__).resolve().parents[3]
    plan_id = subprocess.run(
        [sys.executable, "-c", seed],
        cwd=repo,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout.split()[-1]
    for decision in ("approve", "reject"):
        res = subprocess.run(
            [CAPPLAN, "plans", decision, plan_id, "--by", "alice"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        out = " ".join((res.stdout + res.stderr).split())
        assert res.returncode == 2, out
        assert f"`capplan plans {decision}` must reach your Prefect server" in out
        assert "PREFECT_API_URL" in out
    status = subprocess.run(
        [CAPPLAN, "plans", "show", plan_id, "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert '"status": "proposed"' in status


def test_add_key_stores_the_key_on_the_configured_server(prefect_server, capplan_env) -> None:
    from capplan_app.prefect_api import configured_api_url
    from capplan_app.secrets import resolve_secret

    assert configured_api_url()  # the harness's server
    res = CliRunner().invoke(app, ["approvals", "add-key", "guard-test"])
    assert res.exit_code == 0, res.output
    key = res.output.strip().splitlines()[-1]
    assert resolve_secret("prefect-secret:capplan-approver-guard-test").get_secret_value() == key
