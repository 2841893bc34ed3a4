"""A private Prefect server with its API auth on (Prefect 3 server basic auth) and its UI."""

from __future__ import annotations

from pathlib import Path

from tests.service_helpers import PrefectServerProcess


class AuthPrefectServer(PrefectServerProcess):
    """``prefect server start`` with ``PREFECT_SERVER_API_AUTH_STRING``: every API call (the
    UI's included) needs that ``user:password`` as HTTP basic auth."""

    def __init__(self, home: Path, auth_string: str) -> None:
        super().__init__(home, drop_env=("PREFECT_API_AUTH_STRING",))
        self.auth_string = auth_string
        self.env.update(
            {
                "PREFECT_UI_ENABLED": "true",
                "PREFECT_UI_API_URL": self.api_url,
                "PREFECT_SERVER_API_AUTH_STRING": auth_string,
            }
        )
