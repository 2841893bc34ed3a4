"""Policies as versioned records (docs/architecture.md, "Policy versions").

A policy is applied (``capplan policies apply FILE``): every change of its spec is stored as a
new, numbered version with who applied it and when; an unchanged spec stores nothing. Flows
read a policy by name at its current version, a plan records the version it was made under, and
its steps execute under that version, never under whatever the name means later. Applying a
new version supersedes the policy's proposed and live plans (audited).
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import yaml

from capplan_core.policy import PolicyError, PolicySet, ScalingPolicy


@dataclass(frozen=True)
class PolicyVersion:
    """One stored version of a policy."""

    name: str
    version: int
    policy: ScalingPolicy
    sha256: str
    applied_by: str
    applied_at: datetime
    comment: str = ""
    #: a version that widens authority waits for an approver's signature (four eyes)
    pending: bool = False
    approved_by: str | None = None
    #: the approver's signed token that let a widening version take effect, and when
    approval: str | None = None
    approved_at: datetime | None = None
    #: the SHA-256 of the document exactly as stored (None: the same as the policy's); a
    #: field added to the policy model later changes the model's digest, never this one
    document_sha256: str | None = None

    @property
    def intact(self) -> bool:
        """Whether the stored document still has the digest stored with it (not edited in
        the store since it was applied, or signed)."""
        return (self.document_sha256 or policy_digest(self.policy)) == self.sha256


@dataclass(frozen=True)
class PolicyChange:
    """What applying one policy did: a new version, or nothing (``changed`` False)."""

    name: str
    version: int
    previous: int | None
    changed: bool
    superseded_plans: tuple[int, ...] = ()
    #: stored but not in effect: it widens authority (the reasons) and waits for a signature
    pending: tuple[str, ...] = ()


def version_audit(
    policy: ScalingPolicy,
    version: int,
    previous: int | None,
    digest: str,
    comment: str,
    *,
    widens: Iterable[str] = (),
    superseded: Iterable[int] = (),
) -> tuple[str, dict[str, Any]]:
    """The audit (action, details) of applying a version: ``policy_version_proposed`` when it
    widens authority and waits for a signature (``widens``), else ``policy_applied``. Both
    stores write exactly this."""
    reasons = list(widens)
    if reasons:
        return "policy_version_proposed", {
            "policy": policy.name,
            "version": version,
            "current": previous,
            "sha256": digest,
            "widens": reasons,
            "comment": comment,
        }
    return "policy_applied", {
        "policy": policy.name,
        "version": version,
        "previous": previous,
        "sha256": digest,
        "comment": comment,
        "superseded_plans": list(superseded),
    }


def policy_document(policy: ScalingPolicy) -> dict[str, Any]:
    """The policy as the plain JSON values its versions are stored and compared as."""
    return policy.model_dump(mode="json")


def policy_digest(policy: ScalingPolicy) -> str:
    """A stable SHA-256 of the policy's full spec (defaults included): equal specs, equal
    digests, whatever the key order or the defaults spelled out in the file."""
    return document_digest(policy_document(policy))


def document_digest(doc: Mapping[str, Any]) -> str:
    """The SHA-256 of a policy document (JSON values, keys sorted): what a version's
    ``sha256`` is, computed when it is stored."""
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def policy_yaml(policy: ScalingPolicy | None) -> str:
    """The policy as YAML (sorted keys), for diffs and ``capplan policies show``."""
    if policy is None:
        return ""
    return yaml.safe_dump(policy_document(policy), sort_keys=True)


def policy_diff(
    old: ScalingPolicy | None,
    new: ScalingPolicy | None,
    *,
    old_label: str = "stored",
    new_label: str = "file",
) -> str:
    """A unified diff of two policy specs ("" when they are equal)."""
    lines = difflib.unified_diff(
        policy_yaml(old).splitlines(keepends=True),
        policy_yaml(new).splitlines(keepends=True),
        fromfile=old_label,
        tofile=new_label,
    )
    return "".join(lines)


def check_policy_set(current: Iterable[ScalingPolicy], applied: Iterable[ScalingPolicy]) -> None:
    """Refuse an apply that would leave two policies on one queue or one target.

    ``current`` are the stored policies, ``applied`` the ones being applied (they replace the
    stored ones of the same name). Raises :class:`PolicyError` naming both policies.
    """
    applied = list(applied)
    names = {p.name for p in applied}
    union = [p for p in current if p.name not in names] + applied
    try:
        PolicySet(policies=union)
    except ValueError as err:  # pydantic's ValidationError is a ValueError
        msg = str(err).split("\n")
        reason = next(
            (
                m.strip().removeprefix("Value error, ")
                for m in msg[1:]
                if m.strip() and not m.strip().startswith("For further")
            ),
            str(err),
        )
        raise PolicyError(f"invalid policy set (stored and applied together): {reason}") from None
