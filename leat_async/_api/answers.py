"""What came back: one HTTP answer read into a body to parse or a typed error, and its headers.

Plain functions of ``(status, headers, body)``, tested without sockets.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import MappingProxyType
from typing import Any

import attrs

from .errors import LeatAPIError, RateLimitedError, api_error_class, request_id_of
from .wire import Request, parse_json

__all__ = [
    "Answer",
    "RateInfo",
    "classify",
    "leat_error_body",
    "oversized",
    "parse_rate_info",
    "parse_retry_after",
    "pause_asked",
    "server_date",
    "snippet",
]


def pause_asked(status: int | None, retry_after: float | None) -> float | None:
    """The wait a 429 or a maintenance 503 asks of the whole client (a 429 always asks one)."""
    if status == 429:
        return 1.0 if retry_after is None else retry_after
    if status == 503:
        return retry_after
    return None


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
    def request_id(self) -> str | None:
        """The server's identifier of this answer, when it sent one."""
        return request_id_of(self.headers)

    @property
    def pause(self) -> float | None:
        """The wait this answer asks of the whole client, if any."""
        return pause_asked(self.status, self.rate.retry_after)


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
    return Answer(status, error=error, headers=headers, rate=rate, leat_body=code is not None)


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
