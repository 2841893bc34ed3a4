"""The scalers that talk to a cluster or a process manager (see :mod:`capplan_adapters`).

Importing this package does not import the ``kubernetes`` client; the adapters do on first use.
"""

from capplan_adapters.scalers.factory import (
    SCALER_KINDS,
    KubernetesScaler,
    build_scaler,
    credentials_loader,
)
from capplan_adapters.scalers.k8s_deployment import KubernetesDeploymentScaler
from capplan_adapters.scalers.k8s_keda import KedaScaledObjectScaler

__all__ = [
    "SCALER_KINDS",
    "KedaScaledObjectScaler",
    "KubernetesDeploymentScaler",
    "KubernetesScaler",
    "build_scaler",
    "credentials_loader",
]
