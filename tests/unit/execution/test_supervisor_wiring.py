"""CAPPLAN_SCALER=supervisor builds the supervisord scaler; the dry run handles its targets."""

from __future__ import annotations

import pytest

from capplan_adapters.scalers.factory import build_scaler
from capplan_adapters.scalers.supervisor import SupervisorScaler
from capplan_app import bootstrap
from capplan_app.settings import get_settings
from capplan_core.execution.scaler import DryRunScaler, ScalerError
from capplan_core.policy import TargetSpec

GROUP = TargetSpec(kind="supervisor", name="rqworkers")


def test_dry_run_scaler_scales_a_supervisor_target_and_names_its_field() -> None:
    dry = DryRunScaler(default_replicas=2)
    out = dry.set_replicas(GROUP, 5)
    assert (out.from_replicas, out.to_replicas, out.changed) == (2, 5, True)
    assert out.replica_field.startswith("supervisord group")
    assert dry.get_replicas(GROUP) == 5


def test_build_scaler_supervisor_needs_a_url() -> None:
    with pytest.raises(ScalerError) as err:
        build_scaler("supervisor")
    assert err.value.kind == "config"
    assert "CAPPLAN_SUPERVISOR_URL" in str(err.value)


def test_settings_build_a_supervisor_scaler_with_a_secret_password(monkeypatch) -> None:
    monkeypatch.setenv("CAPPLAN_SCALER", "supervisor")
    monkeypatch.setenv("CAPPLAN_SUPERVISOR_URL", "http://127.0.0.1:9001/RPC2")
    monkeypatch.setenv("CAPPLAN_SUPERVISOR_USERNAME", "capplan")
    monkeypatch.setenv("CAPPLAN_SUPERVISOR_PASSWORD", "s3cret-pw")
    get_settings.cache_clear()
    try:
        s = get_settings()
        assert "s3cret-pw" not in repr(s)  # SecretStr
        scaler = bootstrap.scaler(dry_run_replicas=0)
        assert isinstance(scaler, SupervisorScaler)
        assert "s3cret-pw" not in repr(scaler)
        assert not bootstrap.is_dry_run()
    finally:
        get_settings.cache_clear()


def test_supervisor_scaler_without_url_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setenv("CAPPLAN_SCALER", "supervisor")
    monkeypatch.delenv("CAPPLAN_SUPERVISOR_URL", raising=False)
    get_settings.cache_clear()
    try:
        with pytest.raises(ValueError, match="CAPPLAN_SUPERVISOR_URL"):
            bootstrap.scaler(dry_run_replicas=0)
    finally:
        get_settings.cache_clear()
