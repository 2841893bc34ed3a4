"""Apply an approved plan's steps through a Scaler, once each, re-checking before acting.

Public API: the :class:`Scaler` port with :class:`DryRunScaler` (the one scaler that talks to
no cluster), :class:`ScalerError`, and the pure guard :func:`check_step`. The Kubernetes,
KEDA and supervisord scalers are adapters (:mod:`capplan_adapters.scalers`), built from
settings by the bootstrap.
"""

from capplan_core.execution.guard import GuardAction, GuardDecision, check_step
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
    "DryRunScaler",
    "GuardAction",
    "GuardDecision",
    "LiveReplicas",
    "ReadyOutcome",
    "ScaleOutcome",
    "Scaler",
    "ScalerError",
    "check_step",
    "target_key",
]
