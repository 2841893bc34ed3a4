"""Commands that must reach the real Prefect server refuse a temporary one.

Without ``PREFECT_API_URL`` (in the environment or the active Prefect profile), Prefect's
client starts a temporary server of its own for the length of the command: whatever the
command stores there (an approver's key in a Secret block, a resumed run) is gone when it ends,
and the command still reports success. ``approvals add-key``, ``plans approve|reject`` and any
deploy helper call :func:`require_prefect_server` first.
"""

from __future__ import annotations

EXAMPLE_API_URL = "http://127.0.0.1:4200/api"


class NoPrefectServer(RuntimeError):
    """``PREFECT_API_URL`` is not set: Prefect would start a temporary server."""


def configured_api_url() -> str | None:
    """The Prefect API this process reports to (environment or profile), or None."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    return str(url) if url else None


def require_prefect_server(command: str) -> str:
    """The configured Prefect API URL; raises :class:`NoPrefectServer` naming ``command`` and
    how to set ``PREFECT_API_URL`` when none is configured."""
    url = configured_api_url()
    if url:
        return url
    raise NoPrefectServer(
        f"`{command}` must reach your Prefect server, but PREFECT_API_URL is not set: Prefect "
        "would start a temporary server that stops when this command ends, and lose what it "
        f"did. Set it to your server's API, e.g. `export PREFECT_API_URL={EXAMPLE_API_URL}` "
        f"(or `prefect config set PREFECT_API_URL={EXAMPLE_API_URL}`), in every process that "
        "talks to Prefect (CLI and worker)"
    )
