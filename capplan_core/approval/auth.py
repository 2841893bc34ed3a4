"""Who may decide a plan, and how an approver proves it is them (docs/security.md).

A decision carries an *approval code*: an HMAC-SHA256, under the approver's own key, of the
plan id, the decision and the limits that come with it. The code is checked before the decision
is stored. It binds exactly one decision on one plan, so one seen in transit (or in the Prefect
database, where a run's input is kept) cannot approve another plan, turn a rejection into an
approval, or widen the limits. A plan takes one decision, so the code cannot be replayed.

Pure functions: the keys come in as arguments; they are resolved from secret references
(``prefect-secret:`` or ``env:``) by the caller, outside the domain.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from capplan_core.policy import ScalingPolicy

#: characters of the hex code a person pastes (64 bits)
CODE_CHARS = 16
CODE_PATTERN = rf"^[0-9a-f]{{{CODE_CHARS}}}$"
#: the secret reference an approver's key is read from when the policy names none
DEFAULT_KEY_REF = "prefect-secret:capplan-approver-{name}"


@dataclass(frozen=True)
class DecisionClaim:
    """What an approval form (UI, API or CLI) asserts."""

    plan_id: int
    decision: str  # "approve" | "reject"
    approver: str
    code: str
    max_workers: int | None = None
    apply_hours: float | None = None


def _message(
    plan_id: int, decision: str, max_workers: int | None, apply_hours: float | None
) -> bytes:
    hours = "" if apply_hours is None else repr(float(apply_hours))
    workers = "" if max_workers is None else str(int(max_workers))
    return f"capplan-approval:v1:{plan_id}:{decision}:{workers}:{hours}".encode()


def approval_code(
    key: str,
    plan_id: int,
    decision: str,
    *,
    max_workers: int | None = None,
    apply_hours: float | None = None,
) -> str:
    """The code an approver holding ``key`` gives for this decision on this plan."""
    digest = hmac.new(
        key.encode(), _message(plan_id, decision, max_workers, apply_hours), hashlib.sha256
    ).hexdigest()
    return digest[:CODE_CHARS]


def new_approver_key() -> str:
    """A fresh random approver key (256 bits, URL-safe text)."""
    return secrets.token_urlsafe(32)


def key_ref(policy: ScalingPolicy, approver: str) -> str:
    """Where the key of ``approver`` is kept, for ``policy``."""
    return policy.approval.approver_keys.get(approver, DEFAULT_KEY_REF.format(name=approver))


def authorization_problem(
    policy: ScalingPolicy, approver: str, requesters: Iterable[str]
) -> str | None:
    """Why ``approver`` may not decide a plan of ``policy`` (None: they may).

    Listed in ``approval.approvers``, and, with ``approval.require_distinct_requester``, not
    one of ``requesters`` (who asked for the cycle, who applied the policy version).
    """
    listed = policy.approval.approvers
    if approver not in listed:
        who = ", ".join(listed) if listed else "nobody (approval.approvers is empty)"
        return (
            f"approver {approver!r} is not listed for policy {policy.name!r} "
            f"(approval.approvers: {who})"
        )
    if policy.approval.require_distinct_requester:
        asked = sorted({r for r in requesters if r})
        if approver in asked:
            return (
                f"approver {approver!r} requested this plan (requesters: "
                f"{', '.join(asked)}); policy {policy.name!r} requires a distinct approver"
            )
    return None


def code_problem(claim: DecisionClaim, key: str) -> str | None:
    """Why the claim's code does not prove ``key``'s holder made this decision (None: it
    does). Compared in constant time."""
    want = approval_code(
        key,
        claim.plan_id,
        claim.decision,
        max_workers=claim.max_workers,
        apply_hours=claim.apply_hours,
    )
    if not hmac.compare_digest(want, claim.code.strip().lower()):
        return (
            f"the approval code does not match approver {claim.approver!r}'s key for "
            f"{claim.decision} on plan {claim.plan_id} with these limits"
        )
    return None
