"""The write checks its own authority (issue 24): before a step of an approved plan becomes a
cluster write, the approval itself is checked again, from what the store holds.

A plan whose status was set to ``approved`` in the database (by anyone who can write to it)
has no proof of who approved it. So the approval's audit row must hold the proof, and it must
still hold under the plan's own policy version:

- **approved by capplan** (``capplan-auto``): the policy version the plan was made under is
  ``auto``, and the change is within ``scaling.auto_max_change`` of the plan's starting count
  (or the approval's cap is: a capped auto approval for a pool falling behind);
- **approved by a person**: that person is listed in the policy version's
  ``approval.approvers``, and the approval code stored with the decision is the HMAC of exactly
  this decision (plan, ``approve``, the cap and the window stored with it) under their own key
  (:mod:`.auth`). A decision whose limits were widened in the database no longer matches.

- **signed by a person** (:mod:`.signed`): the stored token is that person's Ed25519
  signature over exactly this decision, this store, this plan as it was signed (its content
  digest) and its policy version, valid when the decision was taken, under one of their
  public keys in the store that is not revoked. Under ``approval.proof: signature`` nothing
  else counts.

What this cannot catch on its own: a database writer who also rewrites the policy version the
plan points at (make it ``auto``), or who adds a public key of their own (signed policy
versions, four eyes, are the next step), or who holds an approver's key.

Pure: the approver's key comes from the caller (``approver_key``, resolved outside the domain).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from capplan_core.approval.auth import DecisionClaim, code_problem
from capplan_core.approval.policy_signing import version_chain_problem
from capplan_core.approval.signed import SIGNATURE_DETAIL, signed_decision_problem
from capplan_core.planning.policy_versions import PolicyVersion
from capplan_core.planning.stored_plan import AuditEntry, PlanStatus, StoredPlan
from capplan_core.policy import Mode, ScalingPolicy

#: who approves by policy (the same actor the approval service records)
AUTO_ACTOR = "capplan-auto"
#: the audit detail that carries a person's approval code
CODE_DETAIL = "approval_code"

#: (plan, its policy version) -> why its approval does not hold, or None
AuthorityCheck = Callable[[StoredPlan, ScalingPolicy], "str | None"]


def authority_problem(
    plan: StoredPlan,
    policy: ScalingPolicy,
    approvals: Sequence[AuditEntry],
    approver_key: Callable[[str], str],
    *,
    store_id: str = "",
    public_keys: Callable[[str], list[str]] = lambda _name: [],
    versions: Sequence[PolicyVersion] = (),
    anchored: bool = False,
) -> str | None:
    """Why ``plan``'s approval does not hold (None: it does). ``approvals`` are the plan's
    ``approved`` audit rows; ``approver_key(name)`` gives an approver's key or raises
    ``LookupError`` with the reason; ``public_keys(name)`` an approver's public keys (not
    revoked) and ``store_id`` this store's id, for a signed decision. ``versions``, the
    policy's stored versions, are checked as a chain (four eyes): the plan's version must be
    one that took effect by the rules, not one made current in the database; ``anchored``
    (trust anchors set) makes a first version that can act need a signature too."""
    who = plan.decided_by
    record = next((a for a in approvals if a.actor == who), None)
    if plan.status != PlanStatus.APPROVED or not who or record is None:
        return (
            f"plan {plan.id} has no recorded approval (status {plan.status}, decided by "
            f"{who!r}): its status was not set by an approval"
        )
    version = plan.details.get("policy_version")
    under = f"policy {policy.name!r}" + (f" v{version}" if version is not None else "")
    if versions:
        chain = version_chain_problem(
            versions,
            int(version or 1),
            store_id=store_id,
            public_keys=public_keys,
            anchored=anchored,
        )
        if chain is not None:
            return f"plan {plan.id} was made under a policy version not in effect: {chain}"
    if who == AUTO_ACTOR:
        return _auto_problem(plan, policy, record, under)
    if who not in policy.approval.approvers:
        return f"plan {plan.id} was approved by {who!r}, who is not an approver of {under}"
    token = record.details.get(SIGNATURE_DETAIL)
    if token:
        # checked as of the decision (its expiry bounds when it could be taken, not when its
        # later steps run), against the plan as it stands and the keys as they stand now
        problem = signed_decision_problem(
            str(token),
            approver=who,
            decision="approve",
            max_workers=record.details.get("max_workers"),
            apply_hours=record.details.get("apply_hours"),
            plan=plan,
            store_id=store_id,
            public_keys=public_keys(who),
            now=record.at,
        )
        return None if problem is None else f"plan {plan.id}'s approval does not hold: {problem}"
    if policy.approval.proof == "signature":
        return (
            f"plan {plan.id}'s approval by {who!r} carries no signature, and {under} takes "
            "signed decisions only (approval.proof: signature)"
        )
    code = record.details.get(CODE_DETAIL)
    if not code:
        return f"plan {plan.id}'s approval by {who!r} carries no approval code"
    try:
        key = approver_key(who)
    except LookupError as err:
        return f"plan {plan.id}'s approval by {who!r} cannot be checked: {err}"
    problem = code_problem(
        DecisionClaim(
            plan_id=plan.id,
            decision="approve",
            approver=who,
            code=str(code),
            max_workers=record.details.get("max_workers"),
            apply_hours=record.details.get("apply_hours"),
        ),
        key,
    )
    return None if problem is None else f"plan {plan.id}'s approval does not hold: {problem}"


def _auto_problem(
    plan: StoredPlan, policy: ScalingPolicy, record: AuditEntry, under: str
) -> str | None:
    if policy.mode != Mode.AUTO:
        return (
            f"plan {plan.id} is marked approved by {AUTO_ACTOR}, but {under} is "
            f"{policy.mode.value}: only a person may approve it"
        )
    limit = policy.scaling.auto_max_change
    start = plan.current_workers or 0
    cap = record.details.get("max_workers")
    if cap is not None:
        if int(cap) - start > limit:
            return (
                f"plan {plan.id}'s auto approval caps it at {cap} workers, more than "
                f"auto_max_change ({limit}) above its {start}"
            )
        return None
    change = max((abs(s.to_workers - start) for s in plan.steps), default=0)
    if change > limit:
        return (
            f"plan {plan.id} changes the pool by {change} workers, more than {under}'s "
            f"auto_max_change ({limit}): capplan could not have approved it"
        )
    return None
