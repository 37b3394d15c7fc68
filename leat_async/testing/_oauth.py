"""The fake's OAuth client-credentials sign-in: ``POST /oauth/token`` and the tokens it issued.

Written from Leat's docs (Laravel Passport): ``grant_type=client_credentials``, ``client_id`` and
``client_secret`` as JSON or form fields; the answer ``{"token_type": "Bearer", "expires_in",
"access_token"}``; bad credentials a 401 ``{"error": "invalid_client", ...}``.
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Callable
from typing import Any, Final

__all__ = ["TOKEN_PATH", "OAuthClients"]

TOKEN_PATH: Final = "/oauth/token"  # noqa: S105 - a path


class OAuthClients:
    """The one OAuth client the fake knows (``FakeLeat(client_id=, client_secret=)``) and the
    access tokens it issued; ``fake.oauth`` in tests.

    ``issued``: how many tokens were issued. ``expire_all()`` and ``revoke(token)`` make
    issued tokens unusable (the next request with one is answered 401); ``expires_in`` (the
    lifetime the answer states, in seconds) may be changed at any time.
    """

    def __init__(
        self,
        client_id: int | str | None,
        client_secret: str | None,
        *,
        expires_in: int,
        monotonic: Callable[[], float],
    ) -> None:
        self.client_id: str | None = None if client_id is None else str(client_id)
        self._secret = client_secret
        self.expires_in: int = expires_in
        self._monotonic = monotonic
        self._tokens: dict[str, float] = {}  # token -> when it expires (monotonic)
        self.issued: int = 0
        self.refused: int = 0  # sign-ins refused (bad credentials or grant)

    def __repr__(self) -> str:
        return f"OAuthClients(client_id={self.client_id!r}, issued={self.issued})"

    @property
    def tokens(self) -> list[str]:
        """The tokens issued and still usable, oldest first."""
        now = self._monotonic()
        return [token for token, until in self._tokens.items() if until > now]

    @property
    def issued_tokens(self) -> list[str]:
        """Every token issued, usable or not, oldest first (for tests that look for leaks)."""
        return list(self._tokens)

    def accepts(self, token: str) -> bool:
        until = self._tokens.get(token)
        return until is not None and until > self._monotonic()

    def expire_all(self) -> None:
        """Every token issued so far is unusable from now on (as if they had expired)."""
        self._tokens = dict.fromkeys(self._tokens, float("-inf"))

    def revoke(self, token: str) -> None:
        if token in self._tokens:
            self._tokens[token] = float("-inf")

    def answer(self, body: Any) -> tuple[int, bytes]:
        """The status and JSON of the token endpoint's answer to ``body`` (parsed form or JSON)."""
        fields = body if isinstance(body, dict) else {}
        if fields.get("grant_type") != "client_credentials":
            self.refused += 1
            return 400, _dump(
                {
                    "error": "unsupported_grant_type",
                    "error_description": "The authorization grant type is not supported.",
                    "message": "The authorization grant type is not supported.",
                }
            )
        client_id, secret = fields.get("client_id"), fields.get("client_secret")
        if (
            self.client_id is None
            or self._secret is None
            or str(client_id) != self.client_id
            or not isinstance(secret, str)
            or not hmac.compare_digest(secret.encode(), self._secret.encode())
        ):
            self.refused += 1
            return 401, _dump(
                {
                    "error": "invalid_client",
                    "error_description": "Client authentication failed",
                    "message": "Client authentication failed",
                }
            )
        token = secrets.token_urlsafe(32)
        self._tokens[token] = self._monotonic() + self.expires_in
        self.issued += 1
        doc = {"token_type": "Bearer", "expires_in": self.expires_in, "access_token": token}
        return 200, _dump(doc)


def _dump(doc: Any) -> bytes:
    return json.dumps(doc).encode()
