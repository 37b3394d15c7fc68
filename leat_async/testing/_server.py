"""``FakeLeat``: the public face of the fake server and its lifecycle (seeding: ``_seeding``)."""

from __future__ import annotations

import random
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import ClassVar, Final, Self

from aiohttp import web

from ._app import Hook, Runtime, build_app
from ._email import EmailOutbox
from ._faults import Fault
from ._oauth import TOKEN_PATH, OAuthClients
from ._ratelimit import FixedWindow
from ._records import (
    ABSENT,
    NULL,
    Absent,
    CardRecord,
    ProgramRecord,
    RecordedRequest,
    ShopRecord,
    TransactionRecord,
    UuidSentinel,
)
from ._render import Renderer
from ._seeding import Seeding
from ._store import Store
from ._webhooks import Webhooks

__all__ = ["FakeLeat"]

_SHUTDOWN_TIMEOUT: Final = 0.25  # a fake has no work worth waiting for at shutdown


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _shuffler(unstable_ties: bool | int) -> random.Random | None:
    if unstable_ties is False:
        return None
    return random.Random(0 if unstable_ties is True else unstable_ties)


class FakeLeat(Seeding):
    """An in-process fake of Leat's giftcard-transactions and giftcard API, over loopback HTTP.

    State lives in plain records (see ``ShopRecord``, ``ProgramRecord``, ``CardRecord`` and
    ``TransactionRecord``); they are mutable and live, so read them freely but change them only
    through these helpers. Pass ``uuid=FakeLeat.NULL`` to model an old card or transaction whose
    uuid is JSON null; ``uuid=None`` (the default) generates one. ``extra=`` on a transaction,
    card or program merges keys into its JSON (the loose shapes the real API sends: ``"true"``
    for a boolean, ``""`` for a date); ``FakeLeat.ABSENT`` as a value removes a key.

    Order of work for a request: a ``when="before"`` fault (no auth, no throttle, no latency);
    auth (401, never throttled or counted); the rate limit (authenticated requests only,
    counted at arrival; ``X-RateLimit-Reset`` uses ``clock``); ``latency``; the endpoint; a
    ``when="after"`` fault. ``make_app()`` must be mounted at the root (it routes on the full
    path). Cards are indexed by ``hash`` and ``program``, and list answers are cached per
    filter set: never change a card's ``hash`` or ``program``, nor a shop's ``uuid`` after
    listing. Each row's own JSON is cached too: a transaction's ``settled``, ``settlements`` and
    ``extra`` (and shops, and card uuids) may change at any time, its other fields not once it
    has been served. A card's balance, ``active``, ``type`` and ``extra`` may change at any time.

    ``unstable_ties``: listings return the rows of one ``created_at`` second in a new order on
    every request (``sort=created_at``, ``-created_at`` and the default order alike), as MySQL
    may under ``ORDER BY`` with ``LIMIT/OFFSET``: page offsets then skip some rows and repeat
    others. ``True``, or an int seeding the shuffles.

    ``echo_custom_attributes``: every transaction's JSON carries the ``custom_attributes`` it
    was created with (``[]`` for none), as a server that echoes them would; the documented
    answer has none, and that is the default.

    ``keep_requests``: how many of the latest requests ``requests`` keeps (``None``, the
    default: all of them, for a test to inspect; a long-running fake keeps a bounded log).

    ``client_id`` and ``client_secret``: the OAuth client that may sign in at ``POST
    /oauth/token`` (``token_url``); the tokens issued live ``token_expires_in`` seconds and are
    accepted alongside ``token`` (``oauth``: expire or revoke them). ``emails``: the giftcard
    e-mails sent (``POST /giftcards/{uuid}/send-by-email``) and the shape of their answer.
    ``request_ids``: every API answer carries an ``X-Request-Id``, as a proxy in front of Leat
    may add (Leat's own answers are not known to).
    """

    NULL: ClassVar[UuidSentinel] = NULL
    ABSENT: ClassVar[Absent] = ABSENT
    PREFIX: ClassVar[str] = "/api/v3/oauth/clients"

    def __init__(
        self,
        *,
        token: str = "test-token",  # noqa: S107 - the fake's well-known test token
        rate_limit: int | None = None,
        rate_window: float = 1.0,
        latency: float = 0.0,
        clock: Callable[[], datetime] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        monotonic: Callable[[], float] | None = None,
        echo_custom_attributes: bool = False,
        unstable_ties: bool | int = False,
        keep_requests: int | None = None,
        client_id: int | str | None = None,
        client_secret: str | None = None,
        token_expires_in: int = 3600,
        request_ids: bool = False,
    ) -> None:
        if not isinstance(token, str) or not token:
            raise ValueError("token must be a non-empty str")
        if latency < 0:
            raise ValueError("latency must be >= 0")
        if keep_requests is not None and (type(keep_requests) is not int or keep_requests < 0):
            raise ValueError(f"keep_requests must be an int >= 0 or None, got {keep_requests!r}")
        self.keep_requests: int | None = keep_requests
        self._token = token
        self._host = host
        self._port = port
        limiter = FixedWindow(rate_limit, rate_window) if rate_limit is not None else None
        self._clock = clock or _utc_now
        monotonic = monotonic or time.monotonic
        #: the OAuth client and the tokens it was issued (see ``OAuthClients``)
        self.oauth: OAuthClients = OAuthClients(
            client_id, client_secret, expires_in=token_expires_in, monotonic=monotonic
        )
        #: the giftcard e-mails sent, and the shape of the answer (see ``EmailOutbox``)
        self.emails: EmailOutbox = EmailOutbox()
        self._rt = Runtime(
            store=Store(self._clock, unstable_ties=_shuffler(unstable_ties)),
            token=token,
            clock=self._clock,
            monotonic=monotonic,
            limiter=limiter,
            latency=latency,
            request_ids=request_ids,
            renderer=Renderer(echo_attributes=echo_custom_attributes),
            requests=[] if keep_requests is None else deque(maxlen=keep_requests),
            webhooks=Webhooks(self._clock),
            oauth=self.oauth,
            emails=self.emails,
        )
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        """A fresh ``aiohttp.web.Application`` serving this fake's state, to mount yourself."""
        return build_app(self._rt)

    async def start(self) -> None:
        """Listen on ``host:port`` (port 0 picks a free one); see ``url``."""
        if self._runner is not None:
            raise RuntimeError("FakeLeat is already running")
        runner = web.AppRunner(
            self.make_app(),
            handle_signals=False,
            access_log=None,
            shutdown_timeout=_SHUTDOWN_TIMEOUT,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        port = runner.addresses[0][1]
        host = f"[{self._host}]" if ":" in self._host else self._host
        self._url = f"http://{host}:{port}"

    async def close(self) -> None:
        """Stop serving (idempotent). State and recorded requests stay readable."""
        runner, self._runner = self._runner, None
        self._url = None
        if runner is not None:
            await runner.cleanup()
        await self.webhooks.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def url(self) -> str:
        """The base URL for clients, e.g. ``http://127.0.0.1:54321`` (only while running)."""
        if self._url is None:
            raise RuntimeError("FakeLeat is not running: use 'async with' or await start()")
        return self._url

    @property
    def token(self) -> str:
        return self._token

    @property
    def token_url(self) -> str:
        """Where a client signs in with ``client_id`` and ``client_secret`` (while running)."""
        return self.url + TOKEN_PATH

    # -- reading state ---------------------------------------------------------------------

    @property
    def transactions(self) -> Sequence[TransactionRecord]:
        """All transactions in id order (the live list: do not modify it)."""
        return self._rt.store.transactions

    @property
    def cards(self) -> Sequence[CardRecord]:
        return self._rt.store.cards

    @property
    def shops(self) -> Sequence[ShopRecord]:
        return self._rt.store.shops

    @property
    def programs(self) -> Sequence[ProgramRecord]:
        return self._rt.store.programs

    def get_transaction(self, uuid: str) -> TransactionRecord | None:
        return self._rt.store.find(uuid)

    def get_card(self, uuid: str) -> CardRecord | None:
        return self._rt.store.cards_by_uuid.get(uuid)

    def get_card_by_hash(self, hash: str) -> CardRecord | None:
        return self._rt.store.cards_by_hash.get(hash)

    # -- requests, hooks and faults --------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request handled, in the order answered (see ``RecordedRequest``); with
        ``keep_requests=N``, the latest ``N`` of them (a copy)."""
        kept = self._rt.requests
        return kept if isinstance(kept, list) else list(kept)

    @property
    def webhooks(self) -> Webhooks:
        """Webhook subscriptions and the deliveries sent to them (see ``Webhooks``):
        ``.subscriptions``, ``.deliveries``, ``await .settled()``, ``.faults.append(...)``."""
        assert self._rt.webhooks is not None
        return self._rt.webhooks

    @property
    def requests_handled(self) -> int:
        """How many requests the fake has handled in all, kept in ``requests`` or not."""
        return self._rt.handled

    def reset_requests(self) -> None:
        self._rt.requests.clear()

    @property
    def status_counts(self) -> Counter[int]:
        """How many answers of each status were sent (0 counts dropped connections)."""
        return Counter(r.status for r in self._rt.requests)

    def max_in_window(self, seconds: float = 1.0) -> int:
        """Most requests that arrived within any half-open interval ``[t, t + seconds)``."""
        ats = sorted(r.at for r in self._rt.requests)
        best = lo = 0
        for hi, at in enumerate(ats):
            while ats[lo] <= at - seconds:
                lo += 1
            best = max(best, hi - lo + 1)
        return best

    def add_hook(self, fn: Hook) -> None:
        """Call ``fn(recorded_request)`` (a :class:`RecordedRequest`: ``method``, ``path``,
        ``query``, ``json``, ``status``...; never the token) after each request, before its
        answer is sent; it runs on the server's loop and must not block. :meth:`remove_hook`
        undoes it."""
        self._rt.hooks.append(fn)

    def remove_hook(self, fn: Hook) -> None:
        """Stop calling ``fn`` (added by :meth:`add_hook`); ``ValueError`` if it was not."""
        self._rt.hooks.remove(fn)

    def add_fault(self, fault: Fault) -> None:
        self._rt.faults.add(fault)

    def clear_faults(self) -> None:
        self._rt.faults.clear()
