"""One attempt over aiohttp: its timeouts, the send itself, and what it came to.

The only module that uses aiohttp's client to send. aiohttp's exceptions are translated here,
once, into a :class:`~leat_async._api.wire.Failure`; an answer is classified by
:func:`~leat_async._api.wire.classify`. Nothing here retries, waits or counts.
"""

from __future__ import annotations

import functools
import math
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime

import aiohttp
import attrs
from yarl import URL

from .._api.answers import classify, oversized
from .._api.wire import Request
from .outcomes import Failure, Outcome

__all__ = [
    "DEFAULT_CONNECT",
    "DEFAULT_MAX_ANSWER_BYTES",
    "EnvProxies",
    "Posted",
    "Timeouts",
    "exchange",
    "post_form",
]

#: Connect timeout when none is given: at most this, and at most half an attempt's timeout.
DEFAULT_CONNECT = 10.0
#: An attempt's timeout when an ``aiohttp.ClientTimeout`` gives no total.
DEFAULT_TOTAL = 30.0
#: The most bytes of one answer the client reads: a 100-row page is about 50 kB, so this is
#: far above any answer the API gives, and far below what would threaten the process.
DEFAULT_MAX_ANSWER_BYTES = 32 * 2**20


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"timeout must be a number of seconds, got {type(value).__name__}")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"timeout must be a positive number of seconds, got {value!r}")
    return float(value)


class EnvProxies:
    """The proxies the environment names (``HTTP(S)_PROXY``, ``NO_PROXY``), read once.

    What ``LeatClient(trust_env=True)`` uses for its own session, instead of aiohttp's
    ``trust_env``: that one also reads ``~/.netrc``, whose credentials cannot go with a bearer
    token (aiohttp refuses the request), and looks proxies up in a thread on every request.
    """

    def __init__(self) -> None:
        self._proxies = urllib.request.getproxies_environment()

    def for_url(self, url: URL) -> str | None:
        proxy = self._proxies.get(url.scheme)
        # the environment's NO_PROXY only (proxy_bypass may ask the system's settings)
        bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
        if proxy is None or bypass(url.host or ""):
            return None
        return proxy


@attrs.frozen
class Timeouts:
    """Seconds for one attempt: in all, and for opening the connection (always the shorter)."""

    total: float
    connect: float
    sock_read: float | None = None

    @classmethod
    def of(cls, value: float | aiohttp.ClientTimeout) -> Timeouts:
        """From a number of seconds or an ``aiohttp.ClientTimeout``; ``ValueError`` if bad."""
        if isinstance(value, aiohttp.ClientTimeout):
            given = (value.total, value.connect, value.sock_connect, value.sock_read)
            for seconds in given:
                if seconds is not None:
                    _seconds(seconds)
            # no total of its own: the default attempt, and never less than its parts
            total = value.total or max(DEFAULT_TOTAL, *(t for t in given if t))
            connect = value.connect or value.sock_connect or min(DEFAULT_CONNECT, total / 2)
            return cls(float(total), float(connect), value.sock_read)
        return cls(_seconds(value), min(DEFAULT_CONNECT, value / 2))

    def within(self, left: float) -> aiohttp.ClientTimeout:
        """aiohttp's timeout for an attempt that may take ``left`` seconds at most.

        The connect timeout fires strictly before the total one, so a connection that is never
        opened is always told apart (nothing was sent) from an answer that never came. Timers
        are exact (no rounding up to whole seconds), or the order could flip.
        """
        if left >= self.total:
            return self._whole
        return self._cut(left)

    @functools.cached_property
    def _whole(self) -> aiohttp.ClientTimeout:
        return self._cut(self.total)

    def _cut(self, left: float) -> aiohttp.ClientTimeout:
        total = max(0.001, min(self.total, left))
        return aiohttp.ClientTimeout(
            total=total,
            connect=min(self.connect, total / 2),
            sock_read=self.sock_read,
            ceil_threshold=math.inf,
        )


class _OneSend:
    """aiohttp resends a GET by itself when a reused connection drops: not behind our back.

    Our retry policy decides (and counts) every resend; a hidden one would escape the cap. It
    is the outermost middleware, so a borrowed session's own middlewares (a token refresh that
    retries) still work inside it. ``entered`` tells whether the request got as far as being
    sent: aiohttp's total timer runs from before its proxy and netrc look-ups.
    """

    def __init__(self) -> None:
        self.entered = False

    async def __call__(
        self, request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        if self.entered:
            raise aiohttp.ServerDisconnectedError("connection lost; not resent by aiohttp")
        self.entered = True
        return await handler(request)


async def exchange(
    session: aiohttp.ClientSession,
    request: Request,
    *,
    url: URL,
    body: bytes | None,
    headers: Mapping[str, str],
    timeout: aiohttp.ClientTimeout,
    proxy: str | None = None,
    max_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
) -> Outcome:
    """Send once; the answer classified, or how the attempt failed.

    At most ``max_bytes`` of the answer's body are read: a larger one is refused (see
    :func:`~leat_async._api.wire.oversized`) and its connection closed, the rest never read.
    """
    # a borrowed session's own middlewares stay in force, inside ours
    once = _OneSend()
    middlewares = (once, *getattr(session, "_middlewares", ()))
    sent_at = datetime.now(UTC)
    try:
        async with session.request(
            request.method,
            url,
            data=body,
            headers=headers,
            timeout=timeout,
            allow_redirects=False,
            raise_for_status=False,  # a borrowed session's own setting must not hide answers
            proxy=proxy,
            middlewares=middlewares,
        ) as resp:
            status, resp_headers = resp.status, resp.headers
            raw = await _read_within(resp, max_bytes)
            if raw is None:
                resp.close()  # the rest stays unread: the connection cannot be reused
    except aiohttp.ConnectionTimeoutError:  # not opened within the connect timeout
        cause = f"could not connect within {timeout.connect:g} s"
        return Outcome(failure=Failure.CONNECT, cause=cause, sent_at=sent_at)
    except aiohttp.ClientConnectorError as exc:  # DNS, refused: nothing was sent
        return Outcome(failure=Failure.CONNECT, cause=_describe(exc), sent_at=sent_at)
    except TimeoutError:
        if not once.entered:  # timed out in aiohttp's look-ups, before any connection
            cause = f"not sent within {timeout.total:g} s"
            return Outcome(failure=Failure.CONNECT, cause=cause, sent_at=sent_at)
        cause = f"no answer within {timeout.total:g} s"
        return Outcome(failure=Failure.TIMEOUT, cause=cause, sent_at=sent_at)
    except (aiohttp.ClientError, OSError) as exc:
        return Outcome(failure=Failure.DISCONNECTED, cause=_describe(exc), sent_at=sent_at)
    now = datetime.now(UTC)
    if raw is None:
        answer = oversized(status, resp_headers, limit=max_bytes, request=request, now=now)
    else:
        answer = classify(status, resp_headers, raw, request=request, now=now)
    return Outcome(answer=answer, date_header=resp_headers.get("Date"), sent_at=sent_at)


@attrs.frozen
class Posted:
    """What a form POST outside the API (the sign-in) came to: an answer, or why none came."""

    status: int | None
    body: bytes = b""
    cause: str = ""  # without an answer: the failure in words (never what was sent)


async def post_form(
    session: aiohttp.ClientSession,
    url: URL,
    form: Mapping[str, str],
    *,
    timeout: aiohttp.ClientTimeout,
    proxy: str | None = None,
    max_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
) -> Posted:
    """POST ``form`` (``application/x-www-form-urlencoded``) once; the status and body."""
    headers = {"Accept": "application/json"}
    try:
        async with session.post(
            url,
            data=dict(form),
            headers=headers,
            timeout=timeout,
            allow_redirects=False,
            raise_for_status=False,
            proxy=proxy,
            middlewares=(_OneSend(),),
        ) as resp:
            raw = await _read_within(resp, max_bytes)
            if raw is None:
                resp.close()
                return Posted(resp.status, cause=f"answer larger than {max_bytes} bytes")
            return Posted(resp.status, raw)
    except TimeoutError:
        return Posted(None, cause=f"no answer within {timeout.total:g} s")
    except (aiohttp.ClientError, OSError) as exc:
        return Posted(None, cause=_describe(exc))


async def _read_within(resp: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The whole body, or ``None`` as soon as it is known to be larger than ``limit``."""
    length = resp.content_length
    if length is not None and length > limit:
        return None
    if length is not None and "Content-Encoding" not in resp.headers:
        return await resp.read()  # its size is known and within the limit: one read
    # no length (chunked), or a compressed one that says nothing of the decoded size
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_any():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
