"""What an attempt came to, and what that means: processed or not, and which error (pure).

The one rule for "was this request processed?" lives here (:func:`processed`): every caller
that must know whether money may be sent again asks it, and nothing else decides.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

import attrs

from .._api.answers import Answer, pause_asked, server_date
from .._api.errors import LeatAPIError, LeatConnectionError, LeatError, LeatTimeoutError
from .._api.unknown import OutcomeUnknownError
from .._api.wire import Request

__all__ = [
    "Failure",
    "Outcome",
    "Processed",
    "Received",
    "answer_processed",
    "final_error",
    "finished",
    "processed",
    "refused_before_processing",
    "unknown_outcome",
    "unreadable",
]

T = TypeVar("T")


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


@attrs.define  # made per request: not frozen, whose __init__ costs twice as much
class Outcome:
    """What one attempt came to: an answer, or a failure before any answer."""

    answer: Answer | None = None
    failure: Failure | None = None
    cause: str = ""
    date_header: str | None = None
    sent_at: datetime | None = None

    @property
    def processed(self) -> Processed:
        """What this attempt proves about the request (see :func:`processed`)."""
        if self.answer is not None:
            return answer_processed(self.answer)
        return processed(failure=self.failure)

    def short(self) -> str:
        """The cause in a few words, for logs and events: the status, or the failure."""
        return self.cause if self.answer is None else f"HTTP {self.answer.status}"

    def describe(self) -> str:
        """The cause in words: the answer's status and what it said, or the failure."""
        answer = self.answer
        if answer is None:
            return self.cause
        if answer.error is None:
            return f"HTTP {answer.status}"
        text = answer.error.message
        return text if text.startswith("HTTP ") else f"HTTP {answer.status}: {text}"


def answer_processed(answer: Answer) -> Processed:
    """What an answer proves about its request (see :func:`processed`)."""
    return processed(
        failure=None if answer.error is None else Failure.STATUS,
        status=answer.status,
        leat_body=answer.leat_body,
        retry_after=answer.rate.retry_after,
    )


def refused_before_processing(answer: Answer) -> bool:
    """An error answer that proves the request was not processed."""
    return answer.error is not None and answer_processed(answer) is Processed.NO


@attrs.define  # made per request: not frozen, whose __init__ costs twice as much
class Received(Generic[T]):
    """What a request came to when it succeeded: the parsed value, and the answer's ``Date``."""

    value: T
    date_header: str | None = None

    @property
    def server_date(self) -> datetime | None:
        """The answer's ``Date`` (parsed only when asked: most pages never need it)."""
        return server_date(self.date_header)


def unknown_outcome(
    request: Request, outcome: Outcome, *, attempts: int, cause: str, landing: float
) -> OutcomeUnknownError:
    """The error of a create or reverse that may have landed. ``landing``: seconds after it was
    sent that it may still land (the server may finish it long after we stopped waiting: PHP
    runs on after a disconnect, proxies allow about a minute), never sooner than now."""
    now = datetime.now(UTC)
    sent_at = outcome.sent_at or now
    answer = outcome.answer
    done = answer is not None and finished(answer.status, leat_body=answer.leat_body)
    return OutcomeUnknownError(
        cause,
        operation=request.operation,
        method=request.method,
        path=request.path,
        sent=request.sent(),
        sent_at=sent_at,
        deadline=max(sent_at + timedelta(seconds=landing), now),
        status=answer.status if answer is not None else None,
        attempts=attempts,
        finished_at=now if done else None,
    )


def final_error(
    request: Request,
    outcome: Outcome,
    *,
    attempts: int,
    unknown: Callable[[str], OutcomeUnknownError],
) -> LeatError:
    """The error a request ends in after its last attempt: the server's own error, or no answer,
    when the request was a read or provably not processed; else ``unknown(cause)``."""
    known = request.idempotent or outcome.processed is Processed.NO
    if outcome.answer is not None and outcome.answer.error is not None and known:
        error = outcome.answer.error
        error.attempts = attempts
        return error
    if outcome.answer is None and known:
        cls = LeatTimeoutError if outcome.failure is Failure.TIMEOUT else LeatConnectionError
        unsent = "; nothing was sent" if outcome.failure is Failure.CONNECT else ""
        return cls(
            f"{outcome.cause}{unsent}", method=request.method, path=request.path, attempts=attempts
        )
    return unknown(outcome.describe())


def unreadable(
    request: Request,
    answer: Answer,
    exc: Exception,
    *,
    attempts: int,
    unknown: Callable[[str], OutcomeUnknownError],
) -> LeatError:
    """A 2xx answer the parser refused: for a read an API error, for money an unknown outcome
    (it landed, but what it made cannot be read)."""
    cause = f"HTTP {answer.status} answer is not what the API documents: {exc}"
    if not request.idempotent:
        return unknown(cause)
    return LeatAPIError(
        cause,
        status=answer.status,
        headers=answer.headers,
        method=request.method,
        path=request.path,
        attempts=attempts,
    )
