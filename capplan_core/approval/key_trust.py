"""Four eyes on approver keys (issue 24, docs/security.md "Four eyes on approver keys").

Registering a public key is itself an authority change: whoever holds its private key may
decide plans in that approver's name. So a key is **in force** (verifies decisions and policy
approvals) only when

- it is a **trust anchor**: listed in ``CAPPLAN_APPROVER_ANCHORS`` (``name:public_key,...``,
  the scaling pool's environment, which a writer of the store cannot change), or, when no
  anchor is configured, the store's first registered key (trust on first use);
- or it is **endorsed**: its registration carries an endorsement token signed by a key in force
  of *another* approver, binding the store, the approver, the public key and an expiry
  (``capplan approvals endorse-key``), submitted before it expired.

A key revoked once is never in force again, under any version, and a revoked anchor neither.
Keys inserted into the store by SQL without a valid endorsement verify nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from capplan_core.approval.signature import (
    SignatureError,
    canonical,
    check_public_key,
    expiry_text,
    read_statement,
    sign_statement,
    verifies,
)
from capplan_core.utc import utc_datetime

SCHEME = "capplan-key-v1"


@dataclass(frozen=True)
class KeyRecord:
    """One registered public key, as the store holds it (in registration order)."""

    approver: str
    version: int
    public_key: str
    added_at: datetime
    revoked: bool = False
    endorsement: str | None = None


@dataclass(frozen=True)
class KeyStatement:
    """What an approver signs to vouch for another approver's new public key."""

    store_id: str
    approver: str
    public_key: str
    endorser: str
    expires_at: str  # ISO 8601, UTC, seconds

    def message(self) -> bytes:
        return f"{SCHEME}\n".encode() + canonical(asdict(self))


def endorsement_statement(
    *,
    store_id: str,
    approver: str,
    public_key: str,
    endorser: str,
    now: datetime,
    valid_s: float = 3600.0,
) -> KeyStatement:
    if endorser == approver:
        raise SignatureError(
            f"--by: {endorser!r} cannot endorse their own key: another approver must"
        )
    return KeyStatement(
        store_id=store_id,
        approver=approver,
        public_key=check_public_key(public_key),
        endorser=endorser,
        expires_at=expiry_text(now, valid_s),
    )


def endorse(private_text: str, st: KeyStatement) -> str:
    """The pasteable token: ``capplan-key-v1.<statement>.<signature>``."""
    return sign_statement(SCHEME, st, private_text)


def decode_endorsement(token: str) -> tuple[KeyStatement, str]:
    return read_statement(
        SCHEME,
        token,
        KeyStatement,
        what="endorsement",
        command="capplan approvals endorse-key",
        noun="key statement",
    )


def endorsement_problem(
    token: str,
    *,
    approver: str,
    public_key: str,
    store_id: str,
    at: datetime,
    in_force: Mapping[str, Iterable[str]],
) -> str | None:
    """Why ``token`` does not put ``approver``'s ``public_key`` in force (None: it does);
    ``at`` is when the key was registered, ``in_force`` the keys in force by then."""
    try:
        st, signature = decode_endorsement(token)
    except SignatureError as err:
        return str(err)
    expires = datetime.fromisoformat(st.expires_at.replace("Z", "+00:00"))
    checks = (
        (st.store_id != store_id, f"it was signed for store {st.store_id!r}, not this one"),
        (
            (st.approver, st.public_key) != (approver, public_key),
            f"it endorses {st.approver!r}'s key {st.public_key[:12]}..., not this one",
        ),
        (st.endorser == approver, f"{approver!r} cannot endorse their own key"),
        (utc_datetime(at) > utc_datetime(expires), f"it expired at {st.expires_at}"),
        (
            not verifies(signature, st.message(), in_force.get(st.endorser, ())),
            f"it does not verify under any key in force of {st.endorser!r}",
        ),
    )
    for failed, why in checks:
        if failed:
            return f"key of {approver!r} not endorsed: {why}"
    return None


def parse_anchors(text: str | None) -> dict[str, tuple[str, ...]]:
    """``CAPPLAN_APPROVER_ANCHORS``: ``name:public_key`` entries, comma-separated."""
    out: dict[str, list[str]] = {}
    for entry in (text or "").split(","):
        if not entry.strip():
            continue
        name, sep, key = entry.strip().partition(":")
        if not sep or not name:
            raise ValueError(
                f"CAPPLAN_APPROVER_ANCHORS: {entry.strip()!r} is not 'name:public_key'"
            )
        try:
            out.setdefault(name, []).append(check_public_key(key))
        except SignatureError as err:
            raise ValueError(f"CAPPLAN_APPROVER_ANCHORS: {name!r}: {err}") from None
    return {name: tuple(keys) for name, keys in out.items()}


def keys_in_force(
    records: Sequence[KeyRecord],
    *,
    store_id: str,
    anchors: Mapping[str, Iterable[str]],
) -> dict[str, list[str]]:
    """{approver: public keys in force} (module doc). ``records`` in registration order."""
    revoked = {(r.approver, r.public_key) for r in records if r.revoked}
    force: dict[str, list[str]] = {}

    def admit(approver: str, key: str) -> None:
        if (approver, key) not in revoked and key not in force.setdefault(approver, []):
            force[approver].append(key)

    for name, keys in anchors.items():
        for key in keys:
            admit(name, key)
    if not anchors and records:  # trust on first use: the store's first key
        admit(records[0].approver, records[0].public_key)
    pending = [r for r in records if r.endorsement and (r.approver, r.public_key) not in revoked]
    grew = True
    while grew:  # an endorsement counts once its endorser's key is in force
        grew = False
        for r in pending:
            if r.public_key not in force.get(r.approver, []) and not endorsement_problem(
                r.endorsement or "",
                approver=r.approver,
                public_key=r.public_key,
                store_id=store_id,
                at=r.added_at,
                in_force=force,
            ):
                admit(r.approver, r.public_key)
                grew = True
    return {name: keys for name, keys in force.items() if keys}


def registration_problem(
    records: Sequence[KeyRecord],
    *,
    approver: str,
    public_key: str,
    endorsement: str | None,
    store_id: str,
    anchors: Mapping[str, Iterable[str]],
    now: datetime,
) -> str | None:
    """Why registering ``approver``'s ``public_key`` now is refused (None: it would be in
    force): the registration-time side of :func:`keys_in_force`."""
    force = keys_in_force(records, store_id=store_id, anchors=anchors)
    if any(r.revoked and (r.approver, r.public_key) == (approver, public_key) for r in records):
        return f"key of {approver!r} was revoked: a revoked key is never in force again"
    if public_key in dict(anchors).get(approver, ()) or public_key in force.get(approver, []):
        return None  # an anchor, or in force already (registering it again changes nothing)
    if not anchors and not records:
        return None  # the store's first key (trust on first use; docs/security.md)
    if endorsement is None:
        return (
            f"a new key of {approver!r} needs another approver's endorsement: they run "
            f"`capplan approvals endorse-key {approver} <public key> --by <them>` and you "
            "pass what it prints as --endorsement"
        )
    return endorsement_problem(
        endorsement,
        approver=approver,
        public_key=public_key,
        store_id=store_id,
        at=now,
        in_force=force,
    )


def key_added_details(
    approver: str, version: int, public_key: str, endorsement: str | None
) -> dict[str, Any]:
    """The ``approver_key_added`` audit row's details, as both stores write them."""
    return {
        "approver": approver,
        "version": version,
        "public_key": public_key,
        "endorsed": endorsement is not None,
    }


def key_refused_details(approver: str, public_key: str, reason: str) -> dict[str, Any]:
    """The ``approver_key_refused`` audit row's details, as both stores write them."""
    return {"approver": approver, "public_key": public_key, "reason": reason}
