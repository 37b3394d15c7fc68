"""LeatClient: configuration, lifecycle, resource accessors."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING

import aiohttp

from ._api.closing import AsyncClosing
from ._api.params import FINGERPRINT, fingerprint, fingerprint_key
from ._api.wire import check_base_url
from ._http.dispatch import Dispatcher, Timeouts
from ._http.observe import Event, Stats
from ._http.pacing import LocalRateState, RateState
from ._http.retry import RetryPolicy
from ._http.signin import ClientCredentials, SignIn
from ._http.telemetry import Telemetry
from ._http.transport import DEFAULT_MAX_ANSWER_BYTES, DEFAULT_TOTAL, EnvProxies
from ._version import __version__
from .resources.giftcard_transactions import GiftcardTransactions
from .resources.giftcards import GiftcardPrograms, Giftcards
from .resources.webhook_subscriptions import WebhookSubscriptions

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MAX_ANSWER_BYTES", "LeatClient"]

DEFAULT_BASE_URL = "https://api.piggy.eu"
DEFAULT_TIMEOUT = DEFAULT_TOTAL
#: Seconds after sending during which a lost create or reverse may still land (PHP keeps
#: running after a disconnect; proxies allow about a minute).
DEFAULT_LANDING_HORIZON = 60.0


def _check_token(token: object) -> str:
    if not isinstance(token, str):
        raise TypeError(f"token must be a str or a ClientCredentials, got {type(token).__name__}")
    if not token:
        raise ValueError("token must not be empty")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in token):
        raise ValueError("token must not contain whitespace or control characters")
    return token


def _check_partner_id(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"partner_id must be a str or None, got {type(value).__name__}")
    if not value.strip():
        raise ValueError("partner_id must not be empty")
    if value != value.strip() or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("partner_id must not hold whitespace at its ends or control characters")
    return value


def _check_positive(value: object, name: str, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if type(value) is not int or value < 1:
        raise ValueError(f"{name} must be an int >= 1{' or None' if optional else ''}")
    return value


class LeatClient(AsyncClosing):
    """An async client for Leat's OAuth API.

    ::

        async with LeatClient(token) as client:
            tx = await client.giftcard_transactions.get(uuid)

    The token never appears in ``repr``, ``str``, exceptions or logs.

    ``timeout``: seconds per attempt (or an ``aiohttp.ClientTimeout``); opening a connection
    gets at most 10 s and at most half of it, so a connection that is never opened is told
    apart from an answer that never came. ``landing_horizon``: seconds after sending during
    which a create or reverse whose answer was lost may still land (``OutcomeUnknownError
    .deadline``; ``recover()`` waits that long before it answers ``None``). ``trust_env``: the
    client's own session goes through the proxy ``HTTP(S)_PROXY`` names, unless ``NO_PROXY``
    excludes the host (off by default, as aiohttp's option of that name; ``~/.netrc`` is not
    read: its credentials cannot go with the token); a borrowed ``session`` keeps its own.
    ``token``: a personal access token (a ``str``), or :class:`ClientCredentials` to sign in
    with an OAuth client's id and secret (the deprecated flow; the token it gets is renewed by
    itself). ``partner_id``: sent as ``X-Partner-ID`` on every request (Leat's partner
    attribution). ``max_answer_bytes``: the most of one answer the client reads (32 MiB by
    default, far above any page); past it a read raises ``LeatAPIError`` and a create or reverse
    ``OutcomeUnknownError``, and the rest is never read into memory.
    ``correlation_attribute``: a custom attribute every create carries with a random id of
    its own (unless the caller sets it): where the server echoes ``custom_attributes``,
    ``recover()`` then tells look-alike charges apart exactly. Off by default: Leat accepts
    only the custom attributes the account defines.
    ``tracer_provider``, ``meter_provider``: where the OpenTelemetry spans and metrics go (the
    ``leat-async[otel]`` extra; ``None``: the global providers): a span per call (a walk is
    one) with a CLIENT span per HTTP attempt, and ``http.client.request.duration``. Without
    opentelemetry installed they are not used and cost nothing.
    """

    def __init__(
        self,
        token: str | ClientCredentials,
        *,
        base_url: str = DEFAULT_BASE_URL,
        session: aiohttp.ClientSession | None = None,
        max_concurrency: int = 8,
        rate_limit: int | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
        rate_state: RateState | None = None,
        on_event: Callable[[Event], None] | None = None,
        landing_horizon: float = DEFAULT_LANDING_HORIZON,
        trust_env: bool = False,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        correlation_attribute: str | None = None,
        partner_id: str | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        credentials = token if isinstance(token, ClientCredentials) else None
        if credentials is None:
            token = _check_token(token)
            # what keys the rate state and fingerprints: stable across a signed-in client's tokens
            key = token
        else:
            key = f"client {credentials.client_id}\n{credentials.client_secret}"
        partner = _check_partner_id(partner_id)
        max_bytes = _check_positive(max_answer_bytes, "max_answer_bytes")
        assert max_bytes is not None
        self._base_url = check_base_url(base_url)
        concurrency = _check_positive(max_concurrency, "max_concurrency")
        assert concurrency is not None
        self._rate_limit = _check_positive(rate_limit, "rate_limit", optional=True)
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise TypeError("retry must be a leat_async.RetryPolicy")
        if session is not None and not isinstance(session, aiohttp.ClientSession):
            raise TypeError("session must be an aiohttp.ClientSession")
        if isinstance(landing_horizon, bool) or not isinstance(landing_horizon, int | float):
            raise TypeError("landing_horizon must be a number of seconds")
        if not 0 <= landing_horizon < float("inf"):
            raise ValueError(f"landing_horizon must be >= 0 seconds, got {landing_horizon!r}")
        self._borrowed = session
        self._owned: aiohttp.ClientSession | None = None
        self._closed = False
        self._concurrency = concurrency
        self._rate_state = rate_state if rate_state is not None else LocalRateState()
        # a shared state keys its data by this: the token and URL, never the token itself
        self._rate_state.bind(hashlib.sha256(f"{key}\n{self._base_url}".encode()).hexdigest())
        self._fingerprint_key = fingerprint_key(key)
        self._headers = {
            "Accept": "application/json",
            "User-Agent": f"leat-async/{__version__}",
        }
        if credentials is None:  # a signed-in client's header changes: sent per attempt
            self._headers["Authorization"] = f"Bearer {token}"
        if partner is not None:
            self._headers["X-Partner-ID"] = partner
        timeouts = Timeouts.of(timeout)
        proxies = EnvProxies() if trust_env and session is None else None
        signin = None
        if credentials is not None:
            signin = SignIn(
                credentials,
                session=self._session,
                timeouts=timeouts,
                proxies=proxies,
                max_answer_bytes=max_bytes,
            )
        self._dispatcher = Dispatcher(
            session=self._session,
            base_url=self._base_url,
            headers=self._headers,
            max_concurrency=concurrency,
            rate_limit=self._rate_limit,
            rate_state=self._rate_state,
            retry=retry if retry is not None else RetryPolicy(),
            timeouts=timeouts,
            landing_horizon=float(landing_horizon),
            on_event=on_event,
            proxies=proxies,
            max_answer_bytes=max_bytes,
            signin=signin,
            telemetry=Telemetry.start(
                tracer_provider=tracer_provider,
                meter_provider=meter_provider,
                base_url=self._base_url,
                version=__version__,
            ),
        )
        if correlation_attribute is not None and (
            not isinstance(correlation_attribute, str) or not correlation_attribute.strip()
        ):
            raise ValueError("correlation_attribute must be a non-empty str or None")
        self.giftcard_transactions: GiftcardTransactions = GiftcardTransactions(
            self._dispatcher,
            prefetch=concurrency,
            correlation_attribute=correlation_attribute,
            fingerprint=self.fingerprint,
        )
        self.giftcards: Giftcards = Giftcards(
            self._dispatcher, prefetch=concurrency, fingerprint=self.fingerprint
        )
        self.giftcard_programs: GiftcardPrograms = GiftcardPrograms(self._dispatcher)
        self.webhook_subscriptions: WebhookSubscriptions = WebhookSubscriptions(self._dispatcher)

    def _session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("this LeatClient is closed")
        if self._borrowed is not None:
            return self._borrowed
        if self._owned is None:
            connector = aiohttp.TCPConnector(limit=max(self._concurrency, 10))
            # our headers as the session's own: not merged into every request again
            self._owned = aiohttp.ClientSession(connector=connector, headers=self._headers)
        return self._owned

    def fingerprint(self, secret: str) -> str:
        """A keyed digest of ``secret`` (a card's code, the ``giftcard_hash`` filter): what
        checkpoints, positions and state files hold instead of it.

        The same secret always gives the same fingerprint for the same token, so a resume can
        recognise the filter it was made with; without the token it can neither be reversed nor
        guessed, even for a short code. (``hmac-sha256:`` and 32 hex digits.)
        """
        if not isinstance(secret, str):
            raise TypeError(f"secret must be a str, got {type(secret).__name__}")
        return fingerprint(self._fingerprint_key, secret)

    @staticmethod
    def is_fingerprint(value: str) -> bool:
        """Whether ``value`` has the form of a :meth:`fingerprint` rather than a secret in clear
        (what a reader of an older checkpoint or state file needs to know)."""
        return value.startswith(FINGERPRINT)

    @property
    def base_url(self) -> str:
        return str(self._base_url)

    @property
    def stats(self) -> Stats:
        """Counters: requests, retries, pauses, 429s, outcome-unknown errors, orphans."""
        return self._dispatcher.stats

    async def aclose(self) -> None:
        """Close the client's own session (a borrowed one is left open).

        Creates and reverses still under way (those whose callers were cancelled included)
        are waited for first: their outcome is never lost.
        """
        await self._dispatcher.money.drain()
        self._closed = True
        owned, self._owned = self._owned, None
        if owned is not None:
            await owned.close()
        await self._rate_state.aclose()

    def __repr__(self) -> str:
        return f"<LeatClient base_url={str(self._base_url)!r} token=***>"
