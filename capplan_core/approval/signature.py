"""Signed decisions: an approver's Ed25519 signature over exactly what they decided
(issue 24, docs/security.md).

The shared-secret approval code (:mod:`.auth`) proves a decision only to whoever holds the
same secret, and a server that can check a code can also make one. A signature is checked
with the approver's *public* key: no server holds anything that can sign, so a person with
full access to Prefect's API or the database still cannot produce a decision in an
approver's name.

What is signed, a :class:`Statement`, binds everything the decision depends on: the store
(its id: two stores that share a Prefect server do not accept each other's decisions), the
plan and a digest of its content (a plan edited after it was signed no longer matches), the
policy version it was made under, the decision, the approver's cap and window, and an expiry
(a signature kept for later stops working). The statement and its signature travel as one
pasteable token, :func:`encode_token` / :func:`decode_token`.

Pure: keys come in as text (URL-safe base64 of the 32 raw bytes); the store keeps the public
ones, versioned per approver; the private key never leaves the approver's machine.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from capplan_core.planning.stored_plan import StoredPlan
from capplan_core.utc import utc_datetime

#: the token's and the signed message's version prefix
_S = TypeVar("_S")  # a statement dataclass (read_statement)
SCHEME = "capplan-decision-v2"
#: how a public key is printed (:func:`printable_public_key`); stored keys are bare
PUBLIC_KEY_PREFIX = "ed25519:"
DECISIONS = ("approve", "reject")
#: how long a signature is valid by default, and at most
DEFAULT_VALID_S = 3600.0
MAX_VALID_S = 7 * 24 * 3600.0


class SignatureError(ValueError):
    """A token or key that cannot be read; the message names the field and the value."""


@dataclass(frozen=True)
class Statement:
    """What an approver signs: one decision on one plan, as it stands, in one store."""

    store_id: str
    plan_id: int
    plan_digest: str
    policy: str
    policy_version: int
    decision: str
    approver: str
    expires_at: datetime
    max_workers: int | None = None
    apply_hours: float | None = None

    def message(self) -> bytes:
        """The signed bytes: the scheme, then the statement as canonical JSON."""
        return f"{SCHEME}\n".encode() + _canonical(self.as_dict())

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["expires_at"] = _iso(self.expires_at)
        return out


def _iso(at: datetime) -> str:
    return utc_datetime(at).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _canonical(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as err:
        raise SignatureError(f"{what}: not URL-safe base64 ({text[:24]!r}...)") from err


def plan_digest(plan: StoredPlan) -> str:
    """SHA-256 (hex) of what a person approves: the queue, the policy and its version, the
    target count, each step's time and counts, the plan's expiry, and the strategy when it is
    hybrid (what an ``auto`` policy's plan chose moves the KEDA rate target; a predictive plan
    digests as before it was recorded). A change to any of them after a decision was signed
    makes the signature fail. A step an approver's cap clipped counts with its planned counts
    (kept in its explanation): the plan as it was signed, so the signature still holds at the
    write."""
    doc = {
        "queue": plan.queue,
        "policy": plan.policy_name,
        "policy_version": plan.details.get("policy_version"),
        "target_workers": plan.target_workers,
        "expires_at": None if plan.expires_at is None else _iso(plan.expires_at),
        "steps": [
            {
                "seq": s.seq,
                "execute_at": _iso(s.execute_at),
                "from_workers": _planned(s.explanation, "from_workers", s.from_workers),
                "to_workers": _planned(s.explanation, "to_workers", s.to_workers),
            }
            for s in sorted(plan.steps, key=lambda s: s.seq)
        ],
    }
    if plan.details.get("strategy") == "hybrid":
        doc["strategy"] = "hybrid"
    return hashlib.sha256(_canonical(doc)).hexdigest()


def _planned(explanation: dict[str, Any], field: str, now: int) -> int:
    planned = explanation.get("planned")
    if isinstance(planned, dict) and isinstance(planned.get(field), int):
        return int(planned[field])
    return now


def is_token(text: str) -> bool:
    """Whether ``text`` is a signed decision (as opposed to a shared-secret approval code)."""
    return text.strip().startswith(SCHEME + ".")


# -- keys ----------------------------------------------------------------------------------------
def new_keypair() -> tuple[str, str]:
    """A fresh (private, public) Ed25519 key pair, each as URL-safe base64 of its raw bytes."""
    private = Ed25519PrivateKey.generate()
    return _private_text(private), public_key_of(_private_text(private))


def _private_text(key: Ed25519PrivateKey) -> str:
    return _b64(
        key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    )


def _private(text: str) -> Ed25519PrivateKey:
    raw = _unb64(text.strip(), "private key")
    if len(raw) != 32:
        raise SignatureError(f"private key: {len(raw)} bytes, an Ed25519 key has 32")
    return Ed25519PrivateKey.from_private_bytes(raw)


def public_key_of(private_text: str) -> str:
    """The public key (URL-safe base64) of a private key."""
    return _b64(
        _private(private_text)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


def printable_public_key(public_text: str) -> str:
    """A public key as it is shown to a person and pasted on a command line: with the
    ``ed25519:`` prefix. Bare URL-safe base64 starts with ``-`` once in 64 keys, and a
    command line reads that as an option (a key made by keygen could not be registered)."""
    return PUBLIC_KEY_PREFIX + check_public_key(public_text)


def check_public_key(text: str) -> str:
    """The key (bare URL-safe base64, as stored) if ``text`` is an Ed25519 public key, with
    or without the ``ed25519:`` prefix, else :class:`SignatureError` naming it."""
    bare = text.strip().removeprefix(PUBLIC_KEY_PREFIX)
    raw = _unb64(bare, "public key")
    if len(raw) != 32:
        raise SignatureError(f"public key: {len(raw)} bytes, an Ed25519 key has 32")
    Ed25519PublicKey.from_public_bytes(raw)
    return bare


# -- signing and the token ------------------------------------------------------------------------
def sign(private_text: str, statement: Statement) -> str:
    """The approver's signature (URL-safe base64) over ``statement``."""
    return sign_message(private_text, statement.message())


def sign_message(private_text: str, message: bytes) -> str:
    """The signature (URL-safe base64) of raw ``message`` bytes under a private key."""
    return _b64(_private(private_text).sign(message))


def verifies(signature: str, message: bytes, public_keys: Iterable[str]) -> bool:
    """Whether ``signature`` over ``message`` verifies under one of ``public_keys``."""
    try:
        raw = _unb64(signature, "signature")
    except SignatureError:
        return False
    for key in public_keys:
        try:
            Ed25519PublicKey.from_public_bytes(_unb64(key, "public key")).verify(raw, message)
            return True
        except (InvalidSignature, ValueError):
            continue
    return False


def canonical(doc: Any) -> bytes:
    """``doc`` as the canonical JSON bytes that are signed (sorted keys, no spaces)."""
    return _canonical(doc)


def b64(raw: bytes) -> str:
    """URL-safe base64 without padding, as tokens carry their parts."""
    return _b64(raw)


def unb64(text: str, what: str) -> bytes:
    """The bytes of a URL-safe base64 part; :class:`SignatureError` names ``what``."""
    return _unb64(text, what)


def encode_token(statement: Statement, signature: str) -> str:
    """What is pasted into the approval form or given to ``capplan plans approve``."""
    return f"{SCHEME}.{_b64(_canonical(statement.as_dict()))}.{signature}"


def decode_token(token: str) -> tuple[Statement, str]:
    """The statement and signature of a pasted token; :class:`SignatureError` names what is
    wrong with it (never a stack trace for a typo)."""
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != SCHEME:
        raise SignatureError(
            f"signature: expected '{SCHEME}.<statement>.<signature>' "
            f"(from `capplan approvals sign`), got {token.strip()[:32]!r}..."
        )
    raw = _unb64(parts[1], "signature statement")
    try:
        doc = json.loads(raw)
    except ValueError as err:
        raise SignatureError("signature statement: not JSON") from err
    if not isinstance(doc, dict):
        raise SignatureError("signature statement: not a JSON object")
    return _statement(doc), parts[2]


def _statement(doc: dict[str, Any]) -> Statement:
    fields = {
        "store_id": str,
        "plan_id": int,
        "plan_digest": str,
        "policy": str,
        "policy_version": int,
        "decision": str,
        "approver": str,
        "expires_at": str,
    }
    for name, kind in fields.items():
        value = doc.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise SignatureError(
                f"signature statement: {name} = {value!r} is not a {kind.__name__}"
            )
    unknown = set(doc) - set(fields) - {"max_workers", "apply_hours"}
    if unknown:
        raise SignatureError(f"signature statement: unknown fields {sorted(unknown)}")
    if doc["decision"] not in DECISIONS:
        raise SignatureError(f"signature statement: decision = {doc['decision']!r}")
    try:
        expires = datetime.fromisoformat(doc["expires_at"].replace("Z", "+00:00"))
    except ValueError as err:
        raise SignatureError(f"signature statement: expires_at = {doc['expires_at']!r}") from err
    workers, hours = doc.get("max_workers"), doc.get("apply_hours")
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool)):
        raise SignatureError(f"signature statement: max_workers = {workers!r}")
    if hours is not None and (not isinstance(hours, int | float) or isinstance(hours, bool)):
        raise SignatureError(f"signature statement: apply_hours = {hours!r}")
    return Statement(
        store_id=doc["store_id"],
        plan_id=doc["plan_id"],
        plan_digest=doc["plan_digest"],
        policy=doc["policy"],
        policy_version=doc["policy_version"],
        decision=doc["decision"],
        approver=doc["approver"],
        expires_at=utc_datetime(expires),
        max_workers=workers,
        apply_hours=None if hours is None else float(hours),
    )


def statement_for(
    plan: StoredPlan,
    *,
    store_id: str,
    decision: str,
    approver: str,
    now: datetime,
    valid_s: float = DEFAULT_VALID_S,
    max_workers: int | None = None,
    apply_hours: float | None = None,
) -> Statement:
    """The statement an approver signs for ``plan`` as it stands now."""
    if decision not in DECISIONS:
        raise SignatureError(f"--decision: {decision!r} is not one of {', '.join(DECISIONS)}")
    if not 0 < valid_s <= MAX_VALID_S:
        raise SignatureError(f"--valid-seconds: {valid_s!r} is not in (0, {MAX_VALID_S:.0f}]")
    version = plan.details.get("policy_version")
    return Statement(
        store_id=store_id,
        plan_id=plan.id,
        plan_digest=plan_digest(plan),
        policy=plan.policy_name or "",
        policy_version=int(version) if version is not None else 0,
        decision=decision,
        approver=approver,
        expires_at=utc_datetime(now) + timedelta(seconds=valid_s),
        max_workers=max_workers,
        apply_hours=apply_hours,
    )


def signed_decision(
    private_text: str,
    plan: StoredPlan,
    *,
    store_id: str,
    decision: str,
    approver: str,
    now: datetime,
    valid_s: float = DEFAULT_VALID_S,
    max_workers: int | None = None,
    apply_hours: float | None = None,
) -> str:
    """The pasteable token of an approver's decision on ``plan`` as it stands now, signed with
    their private key: what ``capplan approvals sign`` prints and the form takes."""
    statement = statement_for(
        plan,
        store_id=store_id,
        decision=decision,
        approver=approver,
        now=now,
        valid_s=valid_s,
        max_workers=max_workers,
        apply_hours=apply_hours,
    )
    return encode_token(statement, sign(private_text, statement))


# -- verifying -------------------------------------------------------------------------------------
def signature_problem(
    statement: Statement,
    signature: str,
    *,
    plan: StoredPlan,
    store_id: str,
    public_keys: Iterable[str],
    now: datetime,
) -> str | None:
    """Why this signed statement does not authorise its decision on ``plan`` in this store
    now (None: it does). Checked: the store, the plan and its content, the policy version,
    the expiry, then the signature under one of the approver's public keys. The decision and
    limits recorded are the statement's own: a caller never pairs a signature with a decision
    or cap from elsewhere (the form's other fields)."""
    version = plan.details.get("policy_version")
    checks = (
        (
            statement.store_id != store_id,
            f"it was signed for store {statement.store_id!r}, not this one ({store_id!r})",
        ),
        (
            statement.plan_id != plan.id,
            f"it was signed for plan {statement.plan_id}, not plan {plan.id}",
        ),
        (
            statement.plan_digest != plan_digest(plan),
            f"plan {plan.id} changed after it was signed (its content digest differs)",
        ),
        (
            version is not None and statement.policy_version != int(version),
            f"it was signed under policy version {statement.policy_version}, the plan was made "
            f"under version {version}",
        ),
        (
            statement.policy != (plan.policy_name or ""),
            f"it was signed for policy {statement.policy!r}, the plan's is {plan.policy_name!r}",
        ),
        (utc_datetime(now) > statement.expires_at, f"it expired at {_iso(statement.expires_at)}"),
    )
    for failed, why in checks:
        if failed:
            return f"signature of {statement.approver!r} refused: {why}"
    try:
        _unb64(signature, "signature")
    except SignatureError as err:
        return f"signature of {statement.approver!r} refused: {err}"
    keys = list(public_keys)
    if verifies(signature, statement.message(), keys):
        return None
    return f"signature of {statement.approver!r} refused: it does not verify under " + (
        f"any of their {len(keys)} public key(s)" if keys else "any key (none is stored)"
    )


def sign_statement(scheme: str, statement: Any, private_text: str) -> str:
    """``<scheme>.<statement as canonical JSON>.<signature>`` for a dataclass statement whose
    ``message()`` is what is signed (policy approvals, key endorsements)."""
    body = _b64(_canonical(asdict(statement)))
    return f"{scheme}.{body}.{sign_message(private_text, statement.message())}"


def read_statement(
    scheme: str, token: str, kind: type[_S], *, what: str, command: str, noun: str
) -> tuple[_S, str]:
    """The statement (a ``kind`` dataclass, from its JSON) and signature of ``token``;
    :class:`SignatureError` names ``what``, the ``command`` that makes such tokens, and the
    ``noun`` the statement should have been."""
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != scheme:
        raise SignatureError(
            f"{what}: expected '{scheme}.<statement>.<signature>' "
            f"(from `{command}`), got {token.strip()[:32]!r}..."
        )
    try:
        doc = json.loads(_unb64(parts[1], f"{what} statement"))
    except ValueError as err:
        raise SignatureError(f"{what} statement: not JSON") from err
    if not isinstance(doc, dict):
        raise SignatureError(f"{what} statement: not a JSON object")
    try:
        return kind(**doc), parts[2]
    except TypeError as err:
        raise SignatureError(f"{what} statement: not a {noun} ({err})") from None


def expiry_text(now: datetime, valid_s: float) -> str:
    """When a token made ``now`` stops being accepted, as signed (ISO 8601, UTC, seconds);
    ``valid_s`` is checked against ``MAX_VALID_S`` and named as ``--valid-seconds``."""
    if not 0 < valid_s <= MAX_VALID_S:
        raise SignatureError(f"--valid-seconds: {valid_s!r} is not in (0, {MAX_VALID_S:.0f}]")
    return _iso(utc_datetime(now) + timedelta(seconds=valid_s))
