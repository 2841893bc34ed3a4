"""A signed decision checked against what it claims to decide (issue 24, docs/security.md).

:mod:`.signature` checks a statement against a plan; this module checks that the statement is
the *same* decision the form or the CLI submitted: the approver, the decision and both limits
(cap and window) are the statement's own, so a valid signature cannot be paired with a wider
cap, another approver's name or the opposite decision. Used where a decision is taken
(:func:`capplan_core.approval.service.authenticate`) and again at the write
(:func:`capplan_core.approval.authority.authority_problem`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from capplan_core.approval.auth import CODE_CHARS
from capplan_core.approval.signature import (
    SCHEME,
    SignatureError,
    decode_token,
    signature_problem,
)
from capplan_core.planning.stored_plan import StoredPlan

#: the audit detail that carries a signed decision (the whole pasteable token)
SIGNATURE_DETAIL = "signature"
#: a signed decision is ~600 characters; anything much longer is not one
MAX_PROOF_CHARS = 2000
#: what the approval form takes: an approval code, or a signed decision token (no escape the
#: browser's JSON-schema check might refuse: the scheme holds letters, digits and '-' only)
PROOF_PATTERN = rf"^(?:[0-9a-f]{{{CODE_CHARS}}}|{SCHEME}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$"


def signed_decision_problem(
    token: str,
    *,
    approver: str,
    decision: str,
    max_workers: int | None,
    apply_hours: float | None,
    plan: StoredPlan,
    store_id: str,
    public_keys: Iterable[str],
    now: datetime,
) -> str | None:
    """Why ``token`` does not prove ``approver``'s ``decision`` (with these limits) on
    ``plan`` in this store at ``now``; None when it does."""
    try:
        statement, signature = decode_token(token)
    except SignatureError as err:
        return str(err)
    claimed = (
        ("approver", statement.approver, approver),
        ("decision", statement.decision, decision),
        ("max_workers", statement.max_workers, max_workers),
        ("apply_hours", statement.apply_hours, _hours(apply_hours)),
    )
    for name, signed, given in claimed:
        if signed != given:
            return (
                f"the signature is for {name} = {signed!r}, the decision submitted says "
                f"{given!r}: sign exactly the decision you submit"
            )
    return signature_problem(
        statement,
        signature,
        plan=plan,
        store_id=store_id,
        public_keys=public_keys,
        now=now,
    )


def _hours(value: float | None) -> float | None:
    return None if value is None else float(value)
