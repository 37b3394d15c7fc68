"""The I/O-free core: build requests, classify answers, read rate-limit headers.

Everything here is a plain function of ``(status, headers, body)`` so it is tested without sockets.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import MappingProxyType
from typing import Any

import attrs
from yarl import URL

from ._errors import LeatAPIError, Operation, RateLimitedError, api_error_class

__all__ = [
    "API_PREFIX",
    "Answer",
    "Failure",
    "Processed",
    "RateInfo",
    "Request",
    "check_base_url",
    "classify",
    "encode_json",
    "finished",
    "leat_error_body",
    "oversized",
    "parse_json",
    "parse_rate_info",
    "parse_retry_after",
    "pause_asked",
    "processed",
    "server_date",
    "snippet",
]

API_PREFIX = "/api/v3/oauth/clients"

try:  # a core dependency on CPython; PyPy has the standard library's json
    import orjson

    _loads: Any = orjson.loads
    _dumps: Any = orjson.dumps
except ImportError:  # pragma: no cover - depends on the environment
    _loads = json.loads

    def _dumps(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()


def parse_json(body: bytes) -> Any:
    """The JSON document in ``body``; ``ValueError`` naming the real cause for anything else.

    Whatever the bytes hold (bad UTF-8, nesting deeper than the parser's stack, numbers out of
    range), with or without orjson, the failure is a ``ValueError``: never a ``RecursionError``
    or a parser's own exception type reaching the caller.
    """
    try:
        return _loads(body)
    except (ValueError, RecursionError, MemoryError, TypeError, OverflowError) as exc:
        raise ValueError(_describe_failure(exc)) from None


def encode_json(value: Any) -> bytes:
    """``value`` as compact JSON; ``ValueError`` if it cannot be (too deep, out of range)."""
    try:
        return bytes(_dumps(value))
    except (ValueError, RecursionError, TypeError, OverflowError) as exc:
        raise ValueError(f"cannot be sent as JSON: {_describe_failure(exc)}") from None


def _describe_failure(exc: BaseException) -> str:
    text = str(exc).split("\n", 1)[0][:120]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Failure(enum.Enum):
    """How an attempt failed before or instead of a usable answer."""

    CONNECT = "could not connect"  # the connection was never opened: nothing was sent
    TIMEOUT = "timed out"
    DISCONNECTED = "connection lost"
    STATUS = "error status"


class Processed(enum.Enum):
    """Whether the server processed a request, as far as its answer (or silence) proves."""

    NO = "provably not processed"
    YES = "processed"
    MAYBE = "may have been processed"


def pause_asked(status: int | None, retry_after: float | None) -> float | None:
    """The wait a 429 or a maintenance 503 asks of the whole client (a 429 always asks one)."""
    if status == 429:
        return 1.0 if retry_after is None else retry_after
    if status == 503:
        return retry_after
    return None


def processed(
    *,
    failure: Failure | None,
    status: int | None = None,
    leat_body: bool = False,
    retry_after: float | None = None,
) -> Processed:
    """The one rule for "was this request processed?"; money is resent only on ``NO``.

    ``NO``: the connection was never opened; a 401; an answer that asks the client to pause (a
    429, a 503 maintenance answer with ``Retry-After``); a 4xx or a 503 carrying a Leat error
    document (message *and* numeric code): the application refused the request. Any other 5xx
    is never proof, whatever it carries: PHP can fail after the charge was written (a 500 with
    code 1000), and ``{"message": ...}`` is what gateways say too. ``YES``: a 2xx. Anything
    else (a timeout, a dropped connection, any other answer) is ``MAYBE``.
    """
    if failure is Failure.CONNECT:
        return Processed.NO
    if failure in (Failure.TIMEOUT, Failure.DISCONNECTED) or status is None:
        return Processed.MAYBE
    if 200 <= status < 300:
        return Processed.YES
    if status == 401 or pause_asked(status, retry_after) is not None:
        return Processed.NO
    if leat_body and (400 <= status < 500 or status == 503):
        return Processed.NO
    return Processed.MAYBE


def finished(status: int, *, leat_body: bool) -> bool:
    """Did the server's application itself say it was done with the request (so that
    whatever it did had happened by the answer)? A 2xx, or its own error document on a 5xx
    that no gateway sends: a 502/504 says nothing of the application behind it, which may
    still be working, and a 503 is maintenance (refused, never processed)."""
    return 200 <= status < 300 or (leat_body and status >= 500 and status not in (502, 503, 504))


@attrs.frozen
class Request:
    """What the client will send. ``path`` is relative to the API prefix."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    body: Mapping[str, Any] | None = None
    operation: Operation = "get"  # named in errors
    subject: str | None = None  # the transaction uuid in the path, if any

    def sent(self) -> dict[str, Any]:
        """What this request asked for, as an ``OutcomeUnknownError`` reports it."""
        if self.body is not None:
            return dict(self.body)
        return {"uuid": self.subject} if self.subject is not None else {}

    @property
    def idempotent(self) -> bool:
        return self.method == "GET"

    def url(self, base: URL) -> URL:
        # yarl percent-encodes '+' in query values as %2B; the server reads a bare '+' as a space.
        url = _endpoint(base, self.path)
        return url.with_query(self.query) if self.query else url

    def encoded_body(self) -> bytes | None:
        """The JSON body; ``ValueError`` (before anything is sent) when it cannot be encoded."""
        return None if self.body is None else encode_json(self.body)


@functools.lru_cache(maxsize=256)
def _endpoint(base: URL, path: str) -> URL:
    return base.with_path(base.path.rstrip("/") + API_PREFIX + path, encoded=False)


@attrs.frozen
class RateInfo:
    """The rate-limit headers of one answer, as a :class:`~leat_async.RateState` receives them.

    ``limit`` and ``remaining``: ``X-RateLimit-Limit`` and ``X-RateLimit-Remaining``;
    ``retry_after`` and ``reset_in``: seconds from when the answer arrived (``Retry-After``,
    ``X-RateLimit-Reset``). ``None`` where the answer did not say.
    """

    limit: int | None = None
    remaining: int | None = None
    retry_after: float | None = None
    reset_in: float | None = None


@attrs.define  # made per request: not frozen, whose __init__ costs twice as much
class Answer:
    """A classified answer: an error, or (2xx) its ``body`` for the caller's parser to read."""

    status: int
    body: bytes = b""
    error: LeatAPIError | None = None
    headers: Mapping[str, str] = attrs.field(default=MappingProxyType({}), repr=False)
    rate: RateInfo = RateInfo()
    leat_body: bool = False  # a Leat error document: a message *and* a numeric code
    oversized: bool = False  # larger than the client reads: refused unread, never asked again

    @property
    def processed(self) -> Processed:
        """What this answer proves about the request (see :func:`processed`)."""
        return processed(
            failure=None if self.error is None else Failure.STATUS,
            status=self.status,
            leat_body=self.leat_body,
            retry_after=self.rate.retry_after,
        )

    @property
    def refused(self) -> bool:
        """An error answer that proves the request was not processed."""
        return self.error is not None and self.processed is Processed.NO

    @property
    def pause(self) -> float | None:
        """The wait this answer asks of the whole client, if any."""
        return pause_asked(self.status, self.rate.retry_after)


def check_base_url(base_url: str) -> URL:
    """https anywhere; plain http only for loopback hosts."""
    if not isinstance(base_url, str) or not base_url:
        raise ValueError("base_url must be a non-empty URL string")
    url = URL(base_url)
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"base_url must be an http(s) URL with a host, got {base_url!r}")
    if url.user or url.password:
        raise ValueError("base_url must not carry credentials")
    if url.query_string or url.fragment:
        raise ValueError("base_url must not carry a query or fragment")
    if url.scheme == "http" and not _is_loopback(url.host):
        raise ValueError(f"plain http is only allowed for loopback hosts, not {url.host!r}")
    return url


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


#: Header numbers beyond this are not believed (a rate limit, a count, an epoch time): they
#: could only overflow the arithmetic that uses them.
_HEADER_INT_MAX = 2**40


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None or len(value) > 20:
        return None
    try:
        number = int(value.strip())
    except ValueError:
        return None
    return number if -_HEADER_INT_MAX <= number <= _HEADER_INT_MAX else None


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` in seconds (``"2"``, ``"1.5"``) or as an HTTP date; ``None`` if unusable."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return max(0.0, (when - now).total_seconds())
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def server_date(value: str | None) -> datetime | None:
    """An HTTP ``Date`` header as an aware datetime; ``None`` if absent or unusable."""
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def parse_rate_info(headers: Mapping[str, str], now: datetime) -> RateInfo:
    """Laravel's ``X-RateLimit-*`` and ``Retry-After``; ``X-RateLimit-Reset`` is an epoch time."""
    reset_in: float | None = None
    reset = _int_header(headers, "X-RateLimit-Reset")
    if reset is not None:
        reset_in = max(0.0, reset - now.timestamp())
    return RateInfo(
        limit=_int_header(headers, "X-RateLimit-Limit"),
        remaining=_int_header(headers, "X-RateLimit-Remaining"),
        retry_after=parse_retry_after(headers.get("Retry-After"), now),
        reset_in=reset_in,
    )


def leat_error_body(body: bytes) -> dict[str, Any] | None:
    """The body as a Leat error document (a JSON object with a str ``message``), else ``None``."""
    try:
        doc = parse_json(body)
    except ValueError:
        return None
    if isinstance(doc, dict) and isinstance(doc.get("message"), str):
        return doc
    return None


def _errors_field(value: Any) -> dict[str, list[str]] | None:
    if not isinstance(value, dict):
        return None
    out: dict[str, list[str]] = {}
    for field, msgs in value.items():
        if isinstance(msgs, list):
            out[str(field)] = [str(m) for m in msgs]
        else:
            out[str(field)] = [str(msgs)]
    return out


def classify(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    request: Request,
    now: datetime,
    attempts: int = 1,
) -> Answer:
    """Turn one HTTP answer into a body to parse (2xx) or a typed error."""
    rate = parse_rate_info(headers, now)
    if 200 <= status < 300:  # what the body holds is for the caller's parser to say
        return Answer(status, body=body, rate=rate, headers=headers)
    where: dict[str, Any] = {
        "method": request.method,
        "path": request.path,
        "attempts": attempts,
        "headers": headers,
    }
    doc = leat_error_body(body)
    code = doc.get("code") if doc is not None else None
    if type(code) is not int:
        code = None
    cls = api_error_class(status, code)
    if doc is not None:
        message = doc["message"]
    elif status in (401, 429, 503):
        message = {401: "Unauthenticated.", 429: "Too Many Attempts.", 503: "Service unavailable"}[
            status
        ]
    else:
        message = f"HTTP {status} without a Leat error body ({snippet(body)})"
    errors = _errors_field(doc.get("errors")) if doc is not None else None
    if cls is RateLimitedError:
        if rate.retry_after is None and rate.reset_in is not None:
            rate = attrs.evolve(rate, retry_after=rate.reset_in)
        error: LeatAPIError = RateLimitedError(
            message, retry_after=rate.retry_after, status=status, code=code, errors=errors, **where
        )
    else:
        error = cls(message, status=status, code=code, errors=errors, **where)
    return Answer(status, error=error, rate=rate, leat_body=code is not None)


def oversized(
    status: int,
    headers: Mapping[str, str],
    *,
    limit: int,
    request: Request,
    now: datetime,
) -> Answer:
    """An answer whose body was larger than ``limit`` bytes: an error, its body left unread.

    It proves nothing about the request but what its status says (a 2xx: it was processed).
    """
    error = LeatAPIError(
        f"HTTP {status} answer larger than {limit:,} bytes (max_answer_bytes): not read",
        status=status,
        headers=headers,
        method=request.method,
        path=request.path,
    )
    rate = parse_rate_info(headers, now)
    return Answer(status, error=error, headers=headers, rate=rate, oversized=True)


def snippet(body: bytes, limit: int = 60) -> str:
    """The start of a body, quoted, for error messages."""
    if not body:
        return "empty body"
    text = body[:limit].decode("utf-8", "replace").replace("\n", " ").strip()
    return repr(text + ("…" if len(body) > limit else ""))


def query_pairs(params: Sequence[tuple[str, object | None]]) -> tuple[tuple[str, str], ...]:
    """Drop ``None`` values; everything else becomes a string."""
    return tuple((k, str(v)) for k, v in params if v is not None)
