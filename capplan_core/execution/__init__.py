"""Apply an approved plan's steps through a Scaler, once each, re-checking before acting.

Public API: the :class:`Scaler` port and its adapters (:class:`DryRunScaler`,
:class:`KubernetesDeploymentScaler`, :class:`KedaScaledObjectScaler`, :class:`KubernetesScaler`),
:func:`build_scaler`, :class:`ScalerError`, the pure guard :func:`check_step`. Importing this
package does not import the ``kubernetes`` client; the adapters do on first use.
"""

from capplan_core.execution.factory import (
    SCALER_KINDS,
    KubernetesScaler,
    build_scaler,
    credentials_loader,
)
from capplan_core.execution.guard import GuardAction, GuardDecision, check_step
from capplan_core.execution.k8s_deployment import KubernetesDeploymentScaler
from capplan_core.execution.k8s_keda import KedaScaledObjectScaler
from capplan_core.execution.scaler import (
    DryRunScaler,
    LiveReplicas,
    ReadyOutcome,
    ScaleOutcome,
    Scaler,
    ScalerError,
    target_key,
)

__all__ = [
    "SCALER_KINDS",
    "DryRunScaler",
    "GuardAction",
    "GuardDecision",
    "KedaScaledObjectScaler",
    "KubernetesDeploymentScaler",
    "KubernetesScaler",
    "LiveReplicas",
    "ReadyOutcome",
    "ScaleOutcome",
    "Scaler",
    "ScalerError",
    "build_scaler",
    "check_step",
    "credentials_loader",
    "target_key",
]
