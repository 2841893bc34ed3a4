"""DryRunScaler and build_scaler without a cluster."""

from __future__ import annotations

import subprocess
import sys

import pytest

from capplan_adapters.scalers import build_scaler
from capplan_core.execution import DryRunScaler, Scaler, ScalerError
from capplan_core.policy import TargetSpec

EMAIL = TargetSpec(namespace="workers", name="email-worker")
KEDA = TargetSpec(kind="scaledobject", namespace="workers", name="thumbnail-so")


def test_dry_run_records_changes_and_is_idempotent() -> None:
    scaler = DryRunScaler({"workers/email-worker": 3})
    assert isinstance(scaler, Scaler)
    assert scaler.get_replicas(EMAIL) == 3
    first = scaler.set_replicas(EMAIL, 7)
    second = scaler.set_replicas(EMAIL, 7)
    assert first.changed and first.dry_run and (first.from_replicas, first.to_replicas) == (3, 7)
    assert not second.changed
    assert scaler.actions == [first]
    assert scaler.get_replicas(EMAIL) == 7


def test_dry_run_default_and_keda_field() -> None:
    scaler = DryRunScaler(default_replicas=1)
    outcome = scaler.set_replicas(KEDA, 4)
    assert outcome.from_replicas == 1 and outcome.replica_field == "spec.minReplicaCount"
    assert scaler.wait_ready(KEDA, 4, timeout_s=1).ready


def test_dry_run_seed_is_copied() -> None:
    seed = {"workers/email-worker": 2}
    DryRunScaler(seed).set_replicas(EMAIL, 5)
    assert seed == {"workers/email-worker": 2}


@pytest.mark.parametrize("bad", [-1, 2.5, True, "3"])
def test_bad_replicas_are_invalid(bad: object) -> None:
    with pytest.raises(ScalerError) as info:
        DryRunScaler().set_replicas(EMAIL, bad)  # type: ignore[arg-type]
    assert info.value.kind == "invalid" and "workers/email-worker" in str(info.value)


def test_build_scaler_dry_run_seeded() -> None:
    scaler = build_scaler("dry-run", replicas={"workers/email-worker": 4})
    assert isinstance(scaler, DryRunScaler) and scaler.get_replicas(EMAIL) == 4


def test_build_scaler_unknown_kind_names_the_choices() -> None:
    with pytest.raises(ScalerError) as info:
        build_scaler("kubectl")
    assert info.value.kind == "invalid" and "dry-run" in str(info.value)


def test_building_a_kubernetes_scaler_loads_nothing() -> None:
    code = (
        "import sys; from capplan_adapters.scalers import build_scaler;"
        "build_scaler('kubernetes', '/nonexistent/kubeconfig');"
        "print('kubernetes' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_dry_run_read_has_a_version_and_a_stale_one_is_a_conflict() -> None:
    t = TargetSpec(kind="deployment", namespace="w", name="x")
    s = DryRunScaler({"w/x": 2})
    live = s.read(t)
    s.set_replicas(t, 3, expected=live)
    with pytest.raises(ScalerError) as err:
        s.set_replicas(t, 5, expected=live)
    assert err.value.kind == "conflict" and s.get_replicas(t) == 3
    assert s.read(t).version != live.version
