"""The error tree of leat-async.

::

    LeatError
    ├── LeatAPIError                 the server answered with an error
    │   ├── AuthenticationError      401
    │   ├── RateLimitedError         429 (.retry_after)
    │   ├── ServiceUnavailableError  503
    │   ├── InvalidInputError        1003
    │   ├── GiftcardNotFoundError    5001
    │   ├── GiftcardExpiredError     5002
    │   ├── InsufficientBalanceError 5003
    │   ├── GiftcardNotIncrementableError 5006
    │   ├── MaxAmountExceededError   5008
    │   ├── TransactionNotFoundError 5010
    │   ├── NotLastTransactionError  55025
    │   ├── ShopNotFoundError        1008
    │   ├── GiftcardProgramNotFoundError 1100
    │   ├── WebhookSubscriptionNotFoundError 80300
    │   └── LeatInternalError        1000
    ├── IncompleteWalkError          a walk that cannot prove it saw every row once
    ├── LeatConnectionError          no answer (for a GET: after its retries)
    │   └── LeatTimeoutError
    ├── OutcomeUnknownError          a create/reverse that may or may not have happened
    │   └── AmbiguousOutcomeError    look-alike lost requests that cannot be told apart
    └── WebhookError                 a webhook delivery that cannot be taken as Leat's
        ├── WebhookSignatureError    Signature missing, malformed or wrong (body not read)
        └── WebhookPayloadError      signed, but not a JSON object with a "type"

Every error says what was sent (method and path, never the token), what came back and how many
attempts were made. Every error pickles (for process pools and job queues): its state is its
attributes, and the token is never one of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from multidict import CIMultiDict, CIMultiDictProxy

__all__ = [
    "AuthenticationError",
    "GiftcardExpiredError",
    "GiftcardNotFoundError",
    "GiftcardNotIncrementableError",
    "GiftcardProgramNotFoundError",
    "IncompleteWalkError",
    "InsufficientBalanceError",
    "InvalidInputError",
    "LeatAPIError",
    "LeatConnectionError",
    "LeatError",
    "LeatInternalError",
    "LeatTimeoutError",
    "MaxAmountExceededError",
    "NotLastTransactionError",
    "Operation",
    "RateLimitedError",
    "ServiceUnavailableError",
    "ShopNotFoundError",
    "TransactionNotFoundError",
    "WebhookError",
    "WebhookPayloadError",
    "WebhookSignatureError",
    "WebhookSubscriptionNotFoundError",
]


#: What a request was for, as errors and events name it.
Operation = Literal[
    "get",
    "list",
    "create",
    "reverse",
    "giftcards.find",
    "giftcards.get",
    "giftcards.list",
    "giftcards.create",
    "giftcards.send_by_email",
    "giftcard_programs.list",
    "webhook_subscriptions.list",
    "webhook_subscriptions.create",
    "webhook_subscriptions.get",
    "webhook_subscriptions.update",
    "webhook_subscriptions.delete",
]


class LeatError(Exception):
    """Base of every error leat-async raises."""

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        path: str | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.message: str = message
        self.method: str | None = method
        self.path: str | None = path
        self.attempts: int = attempts

    def _request_text(self) -> str:
        if self.method is None or self.path is None:
            return ""
        tries = "" if self.attempts == 1 else f", {self.attempts} attempts"
        return f" [{self.method} {self.path}{tries}]"

    def __str__(self) -> str:
        return f"{self.message}{self._request_text()}"

    def __reduce__(self) -> tuple[Any, ...]:
        # the constructors are keyword-only, which Exception's own pickling cannot call
        return (_rebuild, (type(self), self.args, self._picklable_state()))

    def _picklable_state(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def _restore(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


def _rebuild(cls: type[LeatError], args: tuple[Any, ...], state: dict[str, Any]) -> LeatError:
    error = cls.__new__(cls)
    error.args = args
    error._restore(state)
    return error


#: Headers that carry a request identifier, in the order they are looked for.
REQUEST_ID_HEADERS = ("X-Request-Id", "Request-Id", "X-Correlation-Id", "X-Amzn-RequestId")


def request_id_of(headers: Mapping[str, str]) -> str | None:
    """The server's identifier of an answer, from the first of :data:`REQUEST_ID_HEADERS`."""
    for name in REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return value
    return None


def english(message: str) -> str:
    """Leat's messages are often "Dutch | English": keep the English half."""
    if " | " in message:
        return message.rsplit(" | ", 1)[1].strip()
    return message.strip()


class LeatAPIError(LeatError):
    """The server answered with an error status or a body that is not what the API documents."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: int | None = None,
        errors: Mapping[str, Sequence[str]] | None = None,
        headers: Mapping[str, str] | None = None,
        method: str | None = None,
        path: str | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message, method=method, path=path, attempts=attempts)
        self.status: int = status
        self.code: int | None = code
        self.errors: dict[str, list[str]] = {k: list(v) for k, v in (errors or {}).items()}
        #: the answer's headers (case-insensitive; empty when the error was not an answer)
        self.headers: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict(headers or {}))

    @property
    def request_id(self) -> str | None:
        """The server's identifier of the request, when it sent one (quote it to support)."""
        return request_id_of(self.headers)

    def _picklable_state(self) -> dict[str, Any]:
        # a proxy of a multidict does not pickle: the pairs do
        return {**self.__dict__, "headers": tuple(self.headers.items())}

    def _restore(self, state: dict[str, Any]) -> None:
        headers = CIMultiDictProxy(CIMultiDict(state.get("headers", ())))
        self.__dict__.update({**state, "headers": headers})

    def __repr__(self) -> str:
        # what a log or a debugger shows: the kind, Leat's code and the status at a glance
        request = f", request_id={self.request_id!r}" if self.request_id else ""
        message = english(self.message)[:200]
        return (
            f"{type(self).__name__}(code={self.code!r}, status={self.status}, "
            f"message={message!r}{request})"
        )

    def __str__(self) -> str:
        text = english(self.message) or "Leat API error"
        parts = [f"code {self.code}"] if self.code is not None else []
        parts.append(f"HTTP {self.status}")
        if self.request_id is not None:
            parts.append(f"request id {self.request_id}")
        details = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in self.errors.items())
        if details:
            text = f"{text} ({details})"
        return f"{text} ({', '.join(parts)}){self._request_text()}"


class AuthenticationError(LeatAPIError):
    """401: the token was refused."""


class RateLimitedError(LeatAPIError):
    """429, and the wait it asks for is longer than the retry policy allows."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after: float | None = retry_after

    def __str__(self) -> str:
        text = super().__str__()
        if self.retry_after is not None:
            text += f"; retry after {self.retry_after:g} s"
        return text


class ServiceUnavailableError(LeatAPIError):
    """503: Leat is in maintenance mode."""


class InvalidInputError(LeatAPIError):
    """1003: the server refused the input; `.errors` maps fields to messages."""


class GiftcardNotFoundError(LeatAPIError):
    """5001."""


class GiftcardExpiredError(LeatAPIError):
    """5002."""


class InsufficientBalanceError(LeatAPIError):
    """5003: the giftcard's balance does not cover the amount."""


class GiftcardNotIncrementableError(LeatAPIError):
    """5006."""


class MaxAmountExceededError(LeatAPIError):
    """5008."""


class TransactionNotFoundError(LeatAPIError):
    """5010."""


class NotLastTransactionError(LeatAPIError):
    """55025: only a giftcard's last transaction can be reversed."""


class ShopNotFoundError(LeatAPIError):
    """1008."""


class GiftcardProgramNotFoundError(LeatAPIError):
    """1100."""


class WebhookSubscriptionNotFoundError(LeatAPIError):
    """80300: no webhook subscription with that uuid."""


class LeatInternalError(LeatAPIError):
    """1000: Leat's internal error."""


STATUS_CLASSES: dict[int, type[LeatAPIError]] = {
    401: AuthenticationError,
    429: RateLimitedError,
    503: ServiceUnavailableError,
}

CODE_CLASSES: dict[int, type[LeatAPIError]] = {
    1000: LeatInternalError,
    1003: InvalidInputError,
    1008: ShopNotFoundError,
    1100: GiftcardProgramNotFoundError,
    5001: GiftcardNotFoundError,
    5002: GiftcardExpiredError,
    5003: InsufficientBalanceError,
    5006: GiftcardNotIncrementableError,
    5008: MaxAmountExceededError,
    5010: TransactionNotFoundError,
    55025: NotLastTransactionError,
    80300: WebhookSubscriptionNotFoundError,
}


def api_error_class(status: int, code: int | None) -> type[LeatAPIError]:
    """HTTP 401, 429 and 503 decide whatever the body says; otherwise the body's code."""
    if status in STATUS_CLASSES:
        return STATUS_CLASSES[status]
    if code is not None and code in CODE_CLASSES:
        return CODE_CLASSES[code]
    return LeatAPIError


class IncompleteWalkError(LeatError):
    """A walk could not prove that it handed out every row of its snapshot once.

    The server returns the rows of one ``created_at`` second in any order, and a walk fetches
    a second whole whenever a page boundary may have hidden one of its rows; this is raised
    when even that cannot make sure (a second holding more rows than a page, in an order that
    changes on every request), or when fewer rows came than the listing's ``meta.total``
    said. ``second``: the second in question, if one; ``expected`` and ``handed``: the counts.
    Asking the walk again (or resuming its position) tries that page again.
    """

    def __init__(
        self,
        message: str,
        *,
        second: datetime | None = None,
        expected: int | None = None,
        handed: int | None = None,
        method: str | None = None,
        path: str | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message, method=method, path=path, attempts=attempts)
        self.second: datetime | None = second
        self.expected: int | None = expected
        self.handed: int | None = handed


class LeatConnectionError(LeatError):
    """No answer came back: the connection failed or was dropped."""


class LeatTimeoutError(LeatConnectionError):
    """No answer came back in time."""


class WebhookError(LeatError):
    """A webhook delivery that cannot be taken as Leat's. It never holds the secret, nor
    anything of the body."""


class WebhookSignatureError(WebhookError):
    """The delivery's ``Signature`` is missing, malformed, or not the body's (a forgery, a
    wrong secret, or a body changed on the way): the body was not read."""


class WebhookPayloadError(WebhookError):
    """A correctly signed body that is not a JSON object with a ``type`` (and an object as
    ``data``)."""
