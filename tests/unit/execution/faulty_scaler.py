"""A dry-run scaler with scripted faults, for the executor's unit tests."""

from __future__ import annotations

from capplan_core.execution.scaler import (
    DryRunScaler,
    LiveReplicas,
    ScaleOutcome,
    ScalerError,
    target_key,
)
from capplan_core.policy import TargetSpec

_STATUS = {"unreachable": 503, "conflict": 409, "forbidden": 403, "not_found": 404, "invalid": 422}


class FaultyScaler(DryRunScaler):
    """``write_faults``: kinds raised by the next writes, in order; a kind ending in
    ``+landed`` applies the write first and then raises (a timeout after the PATCH landed).
    ``read_faults``: kinds raised by the next reads. ``writes`` counts writes that changed
    the target."""

    def __init__(
        self,
        replicas: dict[str, int],
        *,
        write_faults: list[str] | None = None,
        read_faults: list[str] | None = None,
    ) -> None:
        super().__init__(replicas)
        self.write_faults = list(write_faults or [])
        self.read_faults = list(read_faults or [])
        self.write_calls = 0

    @staticmethod
    def _error(kind: str, target: TargetSpec) -> ScalerError:
        return ScalerError(
            kind,
            f"injected {kind}",
            target=target_key(target),  # type: ignore[arg-type]
            status=_STATUS.get(kind),
        )

    def read(self, target: TargetSpec) -> LiveReplicas:
        if self.read_faults:
            raise self._error(self.read_faults.pop(0), target)
        return super().read(target)

    def set_replicas(
        self, target: TargetSpec, replicas: int, *, expected: LiveReplicas | None = None
    ) -> ScaleOutcome:
        self.write_calls += 1
        if self.write_faults:
            kind = self.write_faults.pop(0)
            if kind.endswith("+landed"):
                super().set_replicas(target, replicas, expected=expected)
                raise self._error(kind.removesuffix("+landed"), target)
            raise self._error(kind, target)
        return super().set_replicas(target, replicas, expected=expected)
