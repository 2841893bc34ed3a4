"""The CLI side of :func:`capplan_app.prefect_api.require_prefect_server`: exit 2 with how to
set ``PREFECT_API_URL`` instead of working on a temporary Prefect server."""

from __future__ import annotations

from capplan_app.prefect_api import NoPrefectServer, require_prefect_server
from capplan_cli.output import fail


def require_server(command: str) -> str:
    """The Prefect API URL, or exit 2 naming ``command`` and ``PREFECT_API_URL``."""
    try:
        return require_prefect_server(command)
    except NoPrefectServer as err:
        fail(str(err), code=2)
