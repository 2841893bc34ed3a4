"""Four eyes on policy changes that widen authority (issue 24, docs/security.md).

A version that widens authority (:func:`.widening.widening_reasons`) is stored *pending*: it
is not the policy's current version until one of the **current** version's approvers signs
it, with their Ed25519 key (never the person who applied it). What they sign binds the store,
the policy, the version and the SHA-256 of its spec, with an expiry; the token is kept with the
version, and the write checks the chain of versions again (:func:`version_chain_problem`), so a
version made current in the database without a signature is refused where it would act.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from capplan_core.approval.signature import (
    SignatureError,
    canonical,
    expiry_text,
    read_statement,
    sign_statement,
    verifies,
)
from capplan_core.approval.widening import pending_reasons, signers_of
from capplan_core.planning.policy_versions import PolicyVersion
from capplan_core.utc import utc_datetime

SCHEME = "capplan-policy-v1"


@dataclass(frozen=True)
class PolicyStatement:
    """What an approver signs to let a widening version take effect."""

    store_id: str
    policy: str
    version: int
    sha256: str
    approver: str
    expires_at: str  # ISO 8601, UTC, seconds

    def message(self) -> bytes:
        return f"{SCHEME}\n".encode() + canonical(asdict(self))


def statement_for_version(
    v: PolicyVersion, *, store_id: str, approver: str, now: datetime, valid_s: float = 3600.0
) -> PolicyStatement:
    return PolicyStatement(
        store_id=store_id,
        policy=v.name,
        version=v.version,
        sha256=v.sha256,
        approver=approver,
        expires_at=expiry_text(now, valid_s),
    )


def sign_version(private_text: str, st: PolicyStatement) -> str:
    """The pasteable token: ``capplan-policy-v1.<statement>.<signature>``."""
    return sign_statement(SCHEME, st, private_text)


def decode_version_token(token: str) -> tuple[PolicyStatement, str]:
    return read_statement(
        SCHEME,
        token,
        PolicyStatement,
        what="signature",
        command="capplan policies approve",
        noun="policy statement",
    )


def version_approval_problem(
    token: str,
    *,
    version: PolicyVersion,
    approvers: Sequence[str] | None,
    store_id: str,
    public_keys: Callable[[str], list[str]],
    at: datetime,
) -> str | None:
    """Why ``token`` does not let ``version`` take effect (None: it does). ``approvers``
    are the current (previous effective) version's, or None: any approver whose key is in
    force (``public_keys`` gives only those; :func:`.widening.signers_of`); ``at`` is when it
    was submitted."""
    try:
        st, signature = decode_version_token(token)
    except SignatureError as err:
        return str(err)
    expires = datetime.fromisoformat(st.expires_at.replace("Z", "+00:00"))
    checks = (
        (
            approvers is not None and st.approver not in approvers,
            f"{st.approver!r} is not an approver of the current version",
        ),
        (
            st.approver == version.applied_by,
            f"{st.approver!r} applied this version: a second person must sign it",
        ),
        (st.store_id != store_id, f"it was signed for store {st.store_id!r}, not this one"),
        (
            (st.policy, st.version) != (version.name, version.version),
            f"it was signed for {st.policy!r} v{st.version}, not v{version.version}",
        ),
        (
            st.sha256 != version.sha256 or not version.intact,
            f"{version.name!r} v{version.version} changed after it was signed",
        ),
        (utc_datetime(at) > utc_datetime(expires), f"it expired at {st.expires_at}"),
        (
            not verifies(signature, st.message(), public_keys(st.approver)),
            f"it does not verify under any public key of {st.approver!r}",
        ),
    )
    for failed, why in checks:
        if failed:
            return f"approval of {version.name!r} v{version.version} refused: {why}"
    return None


def pending_approval_problem(
    token: str,
    *,
    target: PolicyVersion,
    current: PolicyVersion | None,
    store_id: str,
    public_keys: Callable[[str], list[str]],
    at: datetime,
) -> str | None:
    """Why ``token`` does not make ``target`` take effect over ``current`` (None: it does):
    ``target`` must be pending, and signed by one of :func:`.widening.signers_of` ``current``.

    The one exception: the current version itself, effective but unsigned, may be signed in
    place (trust anchors set on a store whose first versions were applied without them:
    docs/security.md); any approver whose key is in force signs it."""
    in_place = (
        current is not None
        and target.version == current.version
        and not target.pending
        and not target.approval
    )
    if not target.pending and not in_place:
        now_at = "none" if current is None else f"v{current.version}"
        return f"policy {target.name!r} v{target.version} is not pending (current: {now_at})"
    return version_approval_problem(
        token,
        version=target,
        approvers=None if in_place else signers_of(None if current is None else current.policy),
        store_id=store_id,
        public_keys=public_keys,
        at=at,
    )


def version_chain_problem(
    records: Sequence[PolicyVersion],
    upto: int,
    *,
    store_id: str,
    public_keys: Callable[[str], list[str]],
    anchored: bool = False,
) -> str | None:
    """Why version ``upto`` of a policy is not one that took effect by the rules (None: it
    is): every effective version up to it either needed no signature over the one before it
    (:func:`.widening.pending_reasons`, the rule the store applies) or carries a valid
    signature of one who could sign it; its spec still has its digest. What a plan made under
    a version forged in the database is refused with. ``anchored``: trust anchors are set,
    so a first version that can act needs a signature too."""
    effective: PolicyVersion | None = None
    for v in sorted(records, key=lambda r: r.version):
        if v.version > upto:
            break
        if v.pending:
            if v.version == upto:
                return f"policy {v.name!r} v{v.version} is pending: no approver has signed it"
            continue
        if not v.intact:
            return f"policy {v.name!r} v{v.version}'s spec does not match its digest"
        before = None if effective is None else effective.policy
        reasons = pending_reasons(before, v.policy, anchored=anchored)
        if reasons:
            if not v.approval or v.approved_at is None:
                return (
                    f"policy {v.name!r} v{v.version} widens authority ({'; '.join(reasons)}) "
                    "and no approver signed it"
                )
            problem = version_approval_problem(
                v.approval,
                version=v,
                approvers=signers_of(before),
                store_id=store_id,
                public_keys=public_keys,
                at=v.approved_at,
            )
            if problem:
                return problem
        effective = v
    if effective is None or effective.version != upto:
        return f"policy version {upto} was never in effect"
    return None
