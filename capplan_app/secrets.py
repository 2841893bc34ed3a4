"""Secret references, resolved at run time (docs/security.md).

A policy or a flow parameter never holds a secret: it names where one is kept.

- ``prefect-secret:<name>``: a Prefect Secret block (``prefect.blocks.system.Secret``);
- ``env:<VARIABLE>``: an environment variable of the process running the flow (a Kubernetes
  Secret mounted into the worker's pod, say), which the Prefect API never exposes.

Resolved values are :class:`~pydantic.SecretStr`: they print as ``**********`` in logs,
reprs and artifacts, and are unwrapped only where a connection is made.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from pydantic import SecretStr

if TYPE_CHECKING:
    from capplan_core.policy import ScalingPolicy


class SecretUnavailable(RuntimeError):
    """A secret reference could not be resolved (the message names the reference only)."""


def resolve_secret(ref: str) -> SecretStr:
    """The secret ``ref`` names. Raises :class:`SecretUnavailable` naming the reference."""
    kind, _, name = ref.partition(":")
    if not name:
        raise SecretUnavailable(
            f"{ref!r} is not a secret reference (prefect-secret:<block> or env:<VARIABLE>)"
        )
    if kind == "env":
        value = os.environ.get(name)
        if not value:
            raise SecretUnavailable(
                f"secret {ref}: the environment variable {name} is not set "
                "in the process running the flow"
            )
        return SecretStr(value)
    if kind == "prefect-secret":
        from prefect.blocks.system import Secret

        try:
            block: Secret = Secret.load(name, _sync=True)  # type: ignore[call-arg,assignment]
        except ValueError as err:  # Prefect: "Unable to find block document named ..."
            raise SecretUnavailable(
                f"secret {ref}: no Prefect Secret block named {name!r} ({type(err).__name__})"
            ) from None
        value = block.get()
        return SecretStr(value if isinstance(value, str) else str(value))
    raise SecretUnavailable(f"{ref!r}: unknown secret kind {kind!r} (prefect-secret or env)")


def store_prefect_secret(name: str, value: str, *, overwrite: bool = True) -> None:
    """Keep ``value`` in the Prefect Secret block ``name`` (``capplan approvers add``)."""
    from prefect.blocks.system import Secret

    Secret(value=value).save(name, overwrite=overwrite, _sync=True)  # type: ignore[call-arg]


def approver_key(policy: ScalingPolicy, approver: str) -> str:
    """An approver's key, from the secret reference the policy names for them (never
    logged); ``LookupError`` with the reason when it cannot be had."""
    from capplan_core.approval.auth import key_ref

    try:
        return resolve_secret(key_ref(policy, approver)).get_secret_value()
    except SecretUnavailable as err:
        raise LookupError(str(err)) from err
