"""Which policies a run plans: by name, by queue, or every enabled one."""

from __future__ import annotations

from collections.abc import Sequence

from capplan_core.policy import PolicyError, ScalingPolicy


class PolicySelectionError(PolicyError):
    """A requested policy name or queue is not in the policy file (the message names it)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def select_policies(
    policies: Sequence[ScalingPolicy],
    *,
    names: Sequence[str] | None = None,
    queue: str | None = None,
) -> list[ScalingPolicy]:
    """The named policies (in the order named), the policies of ``queue`` (a queue or policy
    name), or, with neither, every enabled policy.

    Raises:
        PolicySelectionError: both given, an unknown name, or a queue no policy governs;
            ``field`` is ``names`` or ``queue``.
    """
    if names and queue is not None:
        raise PolicySelectionError("queue", "give a queue or policy names, not both")
    if queue is not None:
        chosen = [p for p in policies if queue in (p.queue, p.name)]
        if not chosen:
            raise PolicySelectionError(
                "queue",
                f"no policy governs queue {queue!r}; known queues: "
                f"{sorted({p.queue for p in policies})}",
            )
        return chosen
    if names:
        known = {p.name: p for p in policies}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise PolicySelectionError(
                "names", f"unknown policy name(s) {unknown}; known: {sorted(known)}"
            )
        return [known[n] for n in dict.fromkeys(names)]
    return [p for p in policies if p.enabled]
