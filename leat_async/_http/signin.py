"""Signing in with OAuth client credentials (Leat's deprecated flow): one token, shared, renewed.

:class:`ClientCredentials` is what a user passes instead of a personal access token;
:class:`SignIn` holds the token it is exchanged for and gives the dispatcher its one seam: the
``Authorization`` header for an attempt (:meth:`SignIn.authorization`), and "a 401 came: the
next attempt needs a new token" (:meth:`SignIn.refused`). Concurrent callers share one
sign-in; a token is renewed a margin before it expires; there is no refresh grant (a new token
is asked for with the credentials again). Neither the secret nor a token is ever in a repr, a
log line or an error: only the client id and the token URL are.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from yarl import URL

from .._api.errors import AuthenticationError, LeatAPIError, LeatConnectionError
from .._api.wire import check_base_url, parse_json
from .transport import DEFAULT_MAX_ANSWER_BYTES, EnvProxies, Posted, Timeouts, post_form

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "DEFAULT_TOKEN_URL",
    "RENEW_MARGIN",
    "ClientCredentials",
    "SignIn",
    "read_token",
    "renew_at",
]

log = logging.getLogger("leat_async")

DEFAULT_TOKEN_URL: Final = "https://api.piggy.eu/oauth/token"  # noqa: S105 - a URL
#: Seconds before a token expires that a new one is asked for (at most half its life).
RENEW_MARGIN: Final = 60.0
_PATH: Final = "/oauth/token"  # as errors name the sign-in
_OAUTH_ERROR: Final = re.compile(r"[a-z_]{1,40}")
# the OAuth errors (RFC 6749, 5.2) that mean "these credentials are refused"
_REFUSED: Final = frozenset({"invalid_client", "invalid_grant", "unauthorized_client"})


def _check_text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"{name} must not contain whitespace or control characters")
    return value


class ClientCredentials:
    """An OAuth client's id and secret, passed to ``LeatClient`` instead of a token.

    ::

        async with LeatClient(ClientCredentials(client_id, client_secret)) as client:
            ...

    The client signs in at ``token_url`` (``grant_type=client_credentials``) on its first
    request, shares that one sign-in among concurrent requests, asks for a new token before
    the old one expires, and after a 401 once more (then resends the request once: a 401 is
    refused before processing, so a create is never charged twice). Credentials the server
    refuses raise :class:`~leat_async.AuthenticationError`. The secret is never shown.
    """

    __slots__ = ("_url", "client_id", "client_secret")

    def __init__(
        self, client_id: int | str, client_secret: str, *, token_url: str = DEFAULT_TOKEN_URL
    ) -> None:
        if isinstance(client_id, bool) or not isinstance(client_id, int | str):
            raise TypeError(f"client_id must be an int or a str, got {type(client_id).__name__}")
        if isinstance(client_id, int) and client_id < 1:
            raise ValueError("client_id must be >= 1")
        if isinstance(client_id, str):
            _check_text(client_id, "client_id")
        self.client_id: int | str = client_id
        self.client_secret: str = _check_text(client_secret, "client_secret")
        self._url: URL = check_base_url(token_url, name="token_url")

    @property
    def token_url(self) -> str:
        return str(self._url)

    def form(self) -> dict[str, str]:
        """What the sign-in POSTs (form fields, as Leat's PHP SDK and RFC 6749 send them)."""
        return {
            "grant_type": "client_credentials",
            "client_id": str(self.client_id),
            "client_secret": self.client_secret,
        }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ClientCredentials):
            return NotImplemented
        return (self.client_id, self.client_secret, self._url) == (
            other.client_id,
            other.client_secret,
            other._url,
        )

    def __hash__(self) -> int:
        return hash((self.client_id, self.client_secret, self._url))

    def __repr__(self) -> str:
        return (
            f"ClientCredentials(client_id={self.client_id!r}, client_secret=***, "
            f"token_url={self.token_url!r})"
        )


def read_token(status: int | None, body: bytes, *, cause: str = "") -> tuple[str, float | None]:
    """The access token and its lifetime in seconds (``None``: not said) from the token
    endpoint's answer; else the error the sign-in ends in (never quoting the answer's body,
    which may hold a token)."""
    if status is None:
        raise LeatConnectionError(f"sign-in failed: {cause}", method="POST", path=_PATH)
    try:
        doc: object = parse_json(body)
    except ValueError:
        doc = None
    fields = doc if isinstance(doc, dict) else {}
    if not 200 <= status < 300:
        error = fields.get("error")
        named = error if isinstance(error, str) and _OAUTH_ERROR.fullmatch(error) else None
        text = f"sign-in refused ({named})" if named else "sign-in refused"
        if status == 401 or (status == 400 and named in _REFUSED):
            text += ": check the client id and secret"
            raise AuthenticationError(text, status=status, method="POST", path=_PATH)
        raise LeatAPIError(text, status=status, method="POST", path=_PATH)
    token = fields.get("access_token")
    if not isinstance(token, str) or not token or any(ord(c) <= 32 for c in token):
        raise LeatAPIError(
            f"HTTP {status} sign-in answer holds no usable access_token",
            status=status,
            method="POST",
            path=_PATH,
        )
    expires = fields.get("expires_in")
    if isinstance(expires, bool) or not isinstance(expires, int | float):
        return token, None
    if not (math.isfinite(expires) and expires > 0):
        return token, 0.0
    return token, float(expires)


def renew_at(obtained: float, expires_in: float | None) -> float:
    """When a token obtained at ``obtained`` (a clock's seconds) is to be renewed: a margin
    before it expires, at most half its life; never, when its lifetime was not said."""
    if expires_in is None:
        return math.inf
    return obtained + expires_in - min(RENEW_MARGIN, expires_in / 2)


class SignIn:
    """The token of one client: asked for when first needed, shared, renewed (see module)."""

    def __init__(
        self,
        credentials: ClientCredentials,
        *,
        session: Callable[[], aiohttp.ClientSession],
        timeouts: Timeouts,
        proxies: EnvProxies | None = None,
        clock: Callable[[], float] | None = None,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
    ) -> None:
        self._credentials = credentials
        self._session = session
        self._timeouts = timeouts
        self._proxies = proxies
        self._clock = clock
        self._max_bytes = max_answer_bytes
        self._header: str | None = None
        self._renew_at = 0.0
        self._pending: asyncio.Task[str] | None = None
        #: sign-ins asked for so far (each one a POST to the token URL)
        self.signins: int = 0

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    async def authorization(self) -> str:
        """The ``Authorization`` header for the next attempt: the current token while it is
        fresh, else the one sign-in under way (started here if none is)."""
        header = self._header
        if header is not None and self._now() < self._renew_at:
            return header
        pending = self._pending
        if pending is None:
            pending = self._pending = asyncio.create_task(self._sign_in())
            pending.add_done_callback(self._finished)
        # a cancelled caller leaves the sign-in running for the others
        return await asyncio.shield(pending)

    def refused(self, header: str) -> None:
        """An attempt sent with ``header`` was answered 401: the next one gets a new token
        (unless a newer one has come since)."""
        if header == self._header:
            self._header = None

    def _finished(self, task: asyncio.Task[str]) -> None:
        if self._pending is task:
            self._pending = None
        if not task.cancelled():
            task.exception()  # retrieved: a failure is raised to every waiter, never logged

    async def _sign_in(self) -> str:
        credentials = self._credentials
        self.signins += 1
        url = credentials._url
        obtained = self._now()  # its lifetime counts from before it was asked for
        posted: Posted = await post_form(
            self._session(),
            url,
            credentials.form(),
            timeout=self._timeouts.within(self._timeouts.total),
            proxy=self._proxies.for_url(url) if self._proxies is not None else None,
            max_bytes=self._max_bytes,
        )
        try:
            token, expires_in = read_token(posted.status, posted.body, cause=posted.cause)
        except LeatAPIError as error:
            log.warning("leat sign-in of client %r refused: %s", credentials.client_id, error)
            raise
        self._header = f"Bearer {token}"
        self._renew_at = renew_at(obtained, expires_in)
        log.debug(
            "leat sign-in of client %r: token for %s s",
            credentials.client_id,
            "unsaid" if expires_in is None else f"{expires_in:g}",
        )
        return self._header
