"""Which policy changes widen authority (issue 24, four eyes; docs/security.md).

A new version of a policy that lets capplan do more without a person, or lets more people
(or other keys) decide, takes effect only when a current approver signs it
(:mod:`.policy_signing`). Narrowing changes, and changes of no authority (forecast, SLO,
simulation settings), apply at once.
"""

from __future__ import annotations

from capplan_core.policy import Mode, ScalingPolicy

#: how much a mode lets capplan do by itself: advisory (never executes) < manual (executes
#: what a person approves) < auto (executes what the policy allows)
MODE_RANK = {Mode.ADVISORY: 0, Mode.MANUAL: 1, Mode.AUTO: 2}


def widening_reasons(old: ScalingPolicy, new: ScalingPolicy) -> list[str]:
    """How ``new`` widens authority over ``old`` (empty: it does not)."""
    out: list[str] = []
    if MODE_RANK[new.mode] > MODE_RANK[old.mode]:
        out.append(f"mode {old.mode.value} -> {new.mode.value}")
    if new.target != old.target:
        out.append("target changed (the pool it scales)")
    added = sorted(set(new.approval.approvers) - set(old.approval.approvers))
    if added:
        out.append(f"approvers added: {', '.join(added)}")
    keys = sorted(
        name
        for name, ref in new.approval.approver_keys.items()
        if old.approval.approver_keys.get(name) != ref
    )
    if keys:
        out.append(f"approver_keys changed: {', '.join(keys)}")
    if old.approval.proof == "signature" and new.approval.proof != "signature":
        out.append("approval.proof signature -> code")
    if old.approval.require_distinct_requester and not new.approval.require_distinct_requester:
        out.append("approval.require_distinct_requester true -> false")
    o, n = old.scaling, new.scaling
    for field, before, after in (
        ("scaling.max_workers", o.max_workers, n.max_workers),
        ("scaling.auto_max_change", o.auto_max_change, n.auto_max_change),
    ):
        if after > before:
            out.append(f"{field} {before} -> {after}")
    if n.confidence_threshold < o.confidence_threshold:
        out.append(
            f"scaling.confidence_threshold {o.confidence_threshold} -> {n.confidence_threshold}"
        )
    return out


def pending_reasons(
    current: ScalingPolicy | None, new: ScalingPolicy, *, anchored: bool = False
) -> list[str]:
    """Why applying ``new`` over the ``current`` version must wait for an approver's signature
    (empty: it takes effect at once). The one rule of both the store (is it stored pending?)
    and the write (:func:`.policy_signing.version_chain_problem`: did it take effect by it?).

    Over a version with approvers: what it widens, signed by one of them. Over nothing (a new
    policy) or a version that lists no approvers (nobody could sign): at once, unless trust
    anchors are set (``anchored``, ``CAPPLAN_APPROVER_ANCHORS``): then a first version that
    can act (mode ``manual`` or ``auto``), or what widens a version without approvers, waits
    for any approver whose key is in force. Without anchors a database writer can register
    keys too, so nothing stronger is possible there (docs/security.md)."""
    if current is not None and current.approval.approvers:
        return widening_reasons(current, new)
    if not anchored:
        return []
    if current is None:
        if new.mode == Mode.ADVISORY:
            return []
        return [
            f"a new policy in mode {new.mode.value}, with trust anchors set: an approver "
            "whose key is in force must sign it"
        ]
    return widening_reasons(current, new)


def signers_of(current: ScalingPolicy | None) -> list[str] | None:
    """Who may sign a version that waits over ``current``: its approvers; None (any approver
    whose key is in force) over a new policy or a version without approvers."""
    if current is not None and current.approval.approvers:
        return list(current.approval.approvers)
    return None
